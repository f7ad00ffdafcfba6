"""Crashes: a signal (SIGKILL) to the server of some nodes; restart them, on the same
data, to recover."""

from __future__ import annotations

from dataclasses import dataclass

from harness.system import Cluster
from nemesis.nodes import NodeFault

# Signals whose default action ends a process: the kill waits for the node to exit.
SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGABRT", "SIGHUP")


@dataclass
class Kill(NodeFault):
    """`kill` (value: a target) and `restart` (every killed node)."""

    signal: str = "SIGKILL"
    name = "kill"
    heal_rank = 0
    start_f = "kill"
    stop_f = "restart"
    state = "killed"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.signal not in SIGNALS:
            raise ValueError(
                f"nemesis.kill.signal: expected one of {', '.join(SIGNALS)}, "
                f"got {repr(self.signal)[:60]}"
            )

    def hit(self, cluster: Cluster, name: str) -> None:
        cluster.kill(name, self.signal)

    def undo(self, cluster: Cluster, name: str) -> None:
        cluster.start(name)
