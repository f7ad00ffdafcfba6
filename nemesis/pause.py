"""Pauses: stop every process of some nodes where it is; let them go on to recover.

In Docker through its cgroup freezer (`docker pause`), which needs nothing in the image
(docs/nemesis.md says why not SIGSTOP); local members get SIGSTOP and SIGCONT.

A paused node keeps its connections open and its port bound, but answers nothing:
peers and clients wait for it instead of being refused (unlike a crash). It is not a
partition either: the kernel still accepts connections on its open ports.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.capabilities import Members, Pausing
from nemesis.nodes import NodeFault


@dataclass
class Pause(NodeFault):
    """`pause` (value: a target) and `resume` (every paused node)."""

    name = "pause"
    needs = (Pausing,)
    heal_rank = 1
    start_f = "pause"
    stop_f = "resume"
    state = "paused"

    def hit(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Pausing)
        cluster.pause(name)

    def undo(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Pausing)
        cluster.resume(name)
