"""Systems under test, and the clusters (node backends) they run on.

A `System` knows one kind of node: the command line that starts a member, how to find
the leader, what version it is, and which client talks to it (Jepsen's `jepsen.db`).
A `Cluster` knows where nodes run (Docker containers, local processes; later SSH hosts):
start, kill, pause, resume a node, run a command in it, and read its logs. Faults and
the runner use both; neither knows the other's insides.

Our store and etcd 3.4 take the same flags and answer the same v2 API, so they share
`EtcdLike` and differ in their program. A user's own system is one small class named in
a spec as `module:Class` (docs/testing-your-system.md).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness import etcd_v3
from harness.client import Client, HttpConnection, Node
from harness.etcd_v2 import EtcdV2Client, ReadMode


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One member as a system sees it: its name, address, ports and data directory."""

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

    @property
    def client_node(self) -> Node:
        return Node(self.name, self.host, self.client_port)


@runtime_checkable
class System(Protocol):
    name: str
    libc_clock: bool  # reads the time through libc, so libfaketime can move its clock

    def command(
        self, node: NodeSpec, members: Sequence[NodeSpec], token: str, new: bool
    ) -> list[str]:
        """argv that starts `node` (`new`: the cluster's first start, empty data dir)."""
        ...

    async def leader(self, nodes: Sequence[NodeSpec], timeout: float = 1.0) -> str | None:
        """The name of the node every answering node agrees leads, or None."""
        ...

    async def healthy(self, node: NodeSpec, timeout: float = 1.0) -> bool: ...

    async def version(self, node: NodeSpec, timeout: float = 1.0) -> str | None: ...

    def client(self, options: Mapping[str, Any]) -> Client:
        """A new client for one process (options: the workload's client options)."""
        ...


class Cluster(Protocol):
    """Where the nodes run. Every method may block; the runner calls them in a thread."""

    system: System
    nodes: list[NodeSpec]

    def up(self) -> None:
        """Create and start every node (idempotent for nodes already running)."""
        ...

    def down(self) -> None:
        """Remove every node and everything made for them. Safe to call twice."""
        ...

    def kill(self, name: str, signal: str = "SIGKILL") -> None:
        """Signal the node's server process and wait until it has exited."""
        ...

    def start(self, name: str) -> None:
        """Start a killed node again, on the same data directory."""
        ...

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def running(self, name: str) -> bool: ...

    def exec(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """Run a command inside the node; (exit code, output). NodeDown if it is not
        running; NotImplementedError where nodes have no system of their own (local)."""
        ...

    def logs(self, name: str) -> bytes: ...

    def copy_in(self, name: str, source: Path, dest: str) -> None:
        """A host file into the node, at the path `dest`."""
        ...

    def copy_out(self, name: str, path: str, dest: Path) -> None:
        """A file or directory of the node into the host directory `dest`."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the results record about this cluster (image, network, nodes)."""
        ...


class NodeDown(RuntimeError):
    """The node is not running, so nothing can run in it."""


def collect_logs(cluster: Cluster, dest: Path) -> list[Path]:
    """Each node's log into dest/NAME.log; a node whose log cannot be read is noted in it."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in cluster.nodes:
        path = dest / f"{spec.name}.log"
        try:
            data = cluster.logs(spec.name)
        except Exception as e:  # the log is evidence, never a reason to fail the run
            data = f"(log of {spec.name} could not be read: {e})\n".encode()
        path.write_bytes(data)
        written.append(path)
    return written


async def get_json(node: Node, path: str, timeout: float) -> Any:
    """GET path on a fresh connection; its JSON body, or None on any failure or non-200."""
    conn = HttpConnection(node.host, node.port, connect_timeout=timeout)
    request = f"GET {path} HTTP/1.1\r\nHost: {conn.host_header}\r\nConnection: close\r\n\r\n"
    try:
        answer = await conn.request(request.encode(), timeout)
        return json.loads(answer.body) if answer.status == 200 else None
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        conn.close()


@dataclass
class EtcdLike:
    """Members started with etcd's flags that serve etcd's v2 API and /v2/stats/self, or
    (`api: v3`, for the v3 workloads) etcd's v3 JSON gateway with v2 off, etcd's default."""

    name: str = "etcd"
    heartbeat_ms: int = 100
    election_ms: int = 1000
    extra_args: tuple[str, ...] = ()
    client_timeout: float = 5.0
    program: tuple[str, ...] = ("etcd",)
    libc_clock: bool = True
    api: str = "v2"  # "v3": v2 off, leader from /v3/maintenance/status, the v3 client

    def command(
        self, node: NodeSpec, members: Sequence[NodeSpec], token: str, new: bool
    ) -> list[str]:
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
        return [
            *self.program_for(node),
            "--name", node.name,
            "--data-dir", node.data_dir,
            "--listen-client-urls", node.client_url,
            "--advertise-client-urls", node.client_url,
            "--listen-peer-urls", node.peer_url,
            "--initial-advertise-peer-urls", node.peer_url,
            "--initial-cluster", cluster,
            "--initial-cluster-token", token,
            "--initial-cluster-state", "new" if new else "existing",
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            *(["--enable-v2=true"] if self.api == "v2" else []),
            *self.extra_args,
        ]  # fmt: skip

    def program_for(self, node: NodeSpec) -> list[str]:
        return list(self.program)

    async def leader(self, nodes: Sequence[NodeSpec], timeout: float = 1.0) -> str | None:
        if self.api == "v3":
            return await etcd_v3.leader([n.client_node for n in nodes], timeout)
        stats = await asyncio.gather(
            *(get_json(n.client_node, "/v2/stats/self", timeout) for n in nodes)
        )
        answered = [(n.name, s) for n, s in zip(nodes, stats, strict=True) if isinstance(s, dict)]
        followed = {s.get("leaderInfo", {}).get("leader") for _, s in answered}
        for name, s in answered:
            if s.get("state") == "StateLeader" and followed == {s.get("id")}:
                return name
        return None

    async def healthy(self, node: NodeSpec, timeout: float = 1.0) -> bool:
        found = await get_json(node.client_node, "/health", timeout)
        return isinstance(found, dict) and found.get("health") in ("true", True)

    async def version(self, node: NodeSpec, timeout: float = 1.0) -> str | None:
        found = await get_json(node.client_node, "/version", timeout)
        if not isinstance(found, dict):
            return None
        return str(found.get("etcdserver", found))

    def client(self, options: Mapping[str, Any]) -> Client:
        if self.api == "v3":
            return etcd_v3.EtcdV3Client(
                timeout=float(options.get("timeout", self.client_timeout)),
                reads=options.get("reads", "linearizable"),
                cas_guard=options.get("cas_guard", "value"),
                lists=bool(options.get("lists", False)))
        reads: ReadMode = options.get("reads", "quorum")
        return EtcdV2Client(timeout=float(options.get("timeout", self.client_timeout)), reads=reads)


@dataclass
class Etcd(EtcdLike):
    """etcd 3.4 from Debian's etcd-server, with the v2 API enabled."""

    name: str = "etcd"
    program: tuple[str, ...] = ("etcd",)
    libc_clock: bool = False  # Go reads the clock without libc


@dataclass
class Store(EtcdLike):
    """Our Raft store (`python -m store`), started with the same flags as etcd."""

    name: str = "store"

    def program_for(self, node: NodeSpec) -> list[str]:
        return [node.python, "-m", "store"]


SYSTEMS: dict[str, type[EtcdLike]] = {"store": Store, "etcd": Etcd}


class BadSystem(ValueError):
    pass


def load_class(ref: str, what: str) -> type:
    """`module:Class` to the class, with a message that says what was wrong."""
    module_name, _, class_name = ref.partition(":")
    if not module_name or not class_name:
        raise BadSystem(f"{what} {ref!r}: expected one of the built-in names or module:Class")
    if os.getcwd() not in sys.path and "" not in sys.path:  # as `python -m` would find it
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BadSystem(f"{what} {ref!r}: cannot import {module_name}: {e}") from None
    except Exception as e:  # the module itself fails as it is imported
        raise BadSystem(
            f"{what} {ref!r}: importing {module_name} failed: {type(e).__name__}: {e}"
        ) from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise BadSystem(f"{what} {ref!r}: {module_name} has no class {class_name}")
    return found


def make_system(ref: str, options: Mapping[str, Any] | None = None,
                api: str | None = None) -> System:
    """The system `ref` names; `api`: the API the workload speaks (v2, v3), given to the
    built-in systems unless the spec's system_options say otherwise."""
    cls = SYSTEMS.get(ref) or load_class(ref, "system")
    if api is not None and ref in SYSTEMS:
        options = {"api": api, **dict(options or {})}
    try:
        system = cls(**dict(options or {}))
    except TypeError as e:
        raise BadSystem(f"system {ref!r}: bad options {dict(options or {})}: {e}") from None
    if not isinstance(system, System):
        raise BadSystem(f"system {ref!r} does not implement harness.system.System")
    return system
