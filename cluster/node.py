"""One member of a cluster as a system and the faults see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One member: its name, address, ports and data directory."""

    name: str
    host: str
    client_port: int
    peer_port: int
    data_dir: str
    python: str = "python3"  # the node's Python interpreter, for systems written in Python

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"


class NodeDown(RuntimeError):
    """The node is not running, so nothing can run in it."""
