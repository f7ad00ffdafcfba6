"""What a backend can do, in small protocols (as Jepsen's optional Kill, Pause and
LogFiles protocols): a fault family names the ones it needs, and a backend without one
is refused before the run with a message that says which (`missing`).

| capability | methods | Docker | local processes | SSH hosts |
|---|---|---|---|---|
| `StartStop` | start, running | yes | yes | yes (a daemon, its pid file) |
| `Signals` | kill(name, signal) | yes (to the container's main process) | yes | yes (to the pid) |
| `Pausing` | pause, resume | yes (cgroup freezer) | yes (SIGSTOP/SIGCONT) | yes (SIGSTOP/SIGCONT) |
| `Throttle` | throttle, unthrottle | yes (the container's CPU quota) | no | no |
| `Network` | net_exec, delayer | yes (the node's helper) | no: one shared network | yes (as root) |
| `CopyOut` | copy_out | yes | yes (a copy) | yes (tar over SSH) |
| `Files` | copy_in, copy_out, exists | yes (no shell needed in the image) | no | yes (SFTP) |
| `Logs` | logs | yes | yes | yes (SFTP) |
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from cluster.node import NodeSpec


class SystemView(Protocol):
    """What faults ask of the system under test."""

    @property
    def name(self) -> str: ...

    @property
    def libc_clock(self) -> bool:
        """It reads the time through libc, so libfaketime can move its clock."""
        ...

    async def leader(self, nodes: Sequence[NodeSpec], timeout: float = 1.0) -> str | None: ...


class Members(Protocol):
    """Every backend: the system and its nodes."""

    @property
    def system(self) -> SystemView: ...

    @property
    def nodes(self) -> list[NodeSpec]: ...


@runtime_checkable
class StartStop(Protocol):
    def start(self, name: str) -> None:
        """Start a node that is down again, on the same data."""
        ...

    def running(self, name: str) -> bool: ...


@runtime_checkable
class Signals(Protocol):
    def kill(self, name: str, signal: str = "SIGKILL") -> None:
        """Signal the node's server; when the signal ends it, wait until it has exited."""
        ...


@runtime_checkable
class Pausing(Protocol):
    def pause(self, name: str) -> None:
        """Stop every process of the node where it is; its ports stay bound."""
        ...

    def resume(self, name: str) -> None: ...


@runtime_checkable
class Throttle(Protocol):
    def throttle(self, name: str, cpus: float) -> None:
        """Let the node's processes use at most `cpus` CPUs (0.1: a tenth of one); it
        keeps running and stays connected, only slower."""
        ...

    def unthrottle(self, name: str) -> None:
        """No CPU limit on the node again."""
        ...


@runtime_checkable
class Network(Protocol):
    """Commands in a node's network namespace with power over its network (NET_ADMIN),
    iptables, tc and Python with the NFQUEUE delayer at hand, whatever the node's image
    holds. The namespace, and the rules in it, outlive a restart of the node."""

    def net_exec(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """(exit code, output); NodeDown if the node's network is gone."""
        ...

    def delayer(self) -> list[str]:
        """argv that runs nemesis/delayer.py there (its options follow)."""
        ...


@runtime_checkable
class CopyOut(Protocol):
    def copy_out(self, name: str, path: str, dest: Path) -> None:
        """A file or directory of the node into the host directory `dest`, as
        dest/BASENAME (FileNotFoundError, or the backend's error, when there is none)."""
        ...


@runtime_checkable
class Files(CopyOut, Protocol):
    """A file system of each node's own."""

    def copy_in(self, name: str, source: Path, dest: str) -> None:
        """A host file into the node, at the path `dest`."""
        ...

    def exists(self, name: str, path: str) -> bool:
        """The node's file system has `path` (asked of the image; no shell needed)."""
        ...


@runtime_checkable
class Logs(Protocol):
    def logs(self, name: str) -> bytes: ...


def missing(backend: object, needs: Sequence[type]) -> list[str]:
    """The capabilities of `needs` a backend (a cluster, or its class) lacks, by name."""
    if isinstance(backend, type):
        return [need.__name__ for need in needs if not issubclass(backend, need)]
    return [need.__name__ for need in needs if not isinstance(backend, need)]
