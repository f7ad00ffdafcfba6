"""Crashes: a signal (SIGKILL) to the server of some nodes; restart them, on the same
data, to recover. In Docker the signal goes to the container's main process through
Docker (nothing needed in the image); the node's network namespace, and the network
faults in force in it, outlive the restart (harness/docker.py)."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.capabilities import Members, Signals, StartStop
from nemesis.nodes import NodeFault

# Signals whose default action ends a process: the kill waits for the node to exit.
SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGABRT", "SIGHUP")


@dataclass
class Kill(NodeFault):
    """`kill` (value: a target) and `restart` (every killed node)."""

    signal: str = "SIGKILL"
    name = "kill"
    needs = (Signals, StartStop)
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

    def hit(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Signals)
        cluster.kill(name, self.signal)

    def undo(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, StartStop)
        cluster.start(name)
