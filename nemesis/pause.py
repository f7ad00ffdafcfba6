"""Pauses: SIGSTOP the server of some nodes; SIGCONT to recover.

A paused node keeps its connections open and its port bound, but answers nothing:
peers and clients wait for it instead of being refused (unlike a crash). It is not a
partition either: the kernel still accepts connections on its open ports.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.system import Cluster
from nemesis.nodes import NodeFault


@dataclass
class Pause(NodeFault):
    """`pause` (value: a target) and `resume` (every paused node)."""

    name = "pause"
    heal_rank = 1
    start_f = "pause"
    stop_f = "resume"
    state = "paused"

    def hit(self, cluster: Cluster, name: str) -> None:
        cluster.pause(name)

    def undo(self, cluster: Cluster, name: str) -> None:
        cluster.resume(name)
