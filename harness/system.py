"""Systems under test, and the clusters (node backends) they run on.

A `System` knows one kind of node: the command line that starts a member, how to find
the leader, what version it is, and which client talks to it (Jepsen's `jepsen.db`).
A `ContainerSystem` also names the image its nodes run in Docker (`NodeImage`), where
its data lives, its ports and environment. A `Cluster` knows where nodes run (Docker
containers, local processes, SSH hosts); what else it can do to them is in the
small protocols of cluster.capabilities. Faults and the runner use both; neither knows
the other's insides.

Our store and etcd 3.4 take the same flags and answer the same v2 API, so they share
`EtcdLike` and differ in their program. A user's own system is one small class named in
a spec as `module:Class` (docs/testing-your-system.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import posixpath
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from cluster.capabilities import CopyOut, Files, Logs
from cluster.node import NodeDown as NodeDown  # systems' modules name both from here
from cluster.node import NodeSpec
from harness import etcd_v3
from harness.client import Client, HttpConnection, Node
from harness.etcd_v2 import EtcdV2Client, ReadMode


def client_node(node: NodeSpec) -> Node:
    """Where a client of `node` connects."""
    return Node(node.name, node.host, node.client_port)


@dataclass(frozen=True, slots=True)
class NodeImage:
    """Where the image a system's nodes run in Docker comes from (harness.image builds it):

    - `NodeImage.local("team/db:1.4")`: an image present in the local Docker (nothing is
      pulled: no registry is reached);
    - `NodeImage.dockerfile("path/to/dir")`: a directory with a Dockerfile, built with
      the legacy builder; its FROM images must be present;
    - `NodeImage.debian("etcd-server")`: Debian bookworm's essential set and these
      packages with their dependencies, made with mmdebstrap; nothing of ours inside;
    - `NodeImage.checkout()`: our store, built from this checkout.
    """

    kind: Literal["local", "dockerfile", "debian", "checkout"]
    ref: str = ""  # local: the image's name; dockerfile: the directory
    packages: tuple[str, ...] = ()  # debian

    @staticmethod
    def local(name: str) -> NodeImage:
        return NodeImage("local", name)

    @staticmethod
    def dockerfile(directory: str | Path) -> NodeImage:
        return NodeImage("dockerfile", str(directory))

    @staticmethod
    def debian(*packages: str) -> NodeImage:
        return NodeImage("debian", packages=tuple(packages))

    @staticmethod
    def checkout() -> NodeImage:
        return NodeImage("checkout")

    @staticmethod
    def named(text: str) -> NodeImage:
        """As a spec's `system_options` name one: a directory with a Dockerfile, or else an
        image in the local Docker."""
        return NodeImage.dockerfile(text) if Path(text).is_dir() else NodeImage.local(text)

    def describe(self) -> str:
        if self.kind == "debian":
            return f"debian({', '.join(self.packages)})"
        return self.ref or self.kind


CHECKOUT_IMAGE = NodeImage.checkout()
ETCD_IMAGE = NodeImage.debian("etcd-server")  # etcd and nothing else: no Python, no iptables


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


@runtime_checkable
class ContainerSystem(System, Protocol):
    """A system that can run in Docker: its image, and what a member needs of a container.

    Its members' data lives in `data_dir`, on a volume per node that a killed node
    restarts on; `client_port` and `peer_port` are where members listen (the peer port may
    be unused). `env` is every member's environment."""

    image: NodeImage
    data_dir: str
    client_port: int
    peer_port: int
    env: Mapping[str, str]


class HostShell(Protocol):
    """One SSH host, as a system's `install` step sees it (harness/ssh.py)."""

    address: str

    def run(self, script: str) -> tuple[int, str]:
        """A shell script as root (sudo when the user is not); (exit code, output)."""
        ...

    def put(self, source: Path, dest: str) -> None:
        """A file of this machine onto the host, at `dest`."""
        ...


@runtime_checkable
class HostInstall(Protocol):
    """A system that installs itself on an SSH host before the run (the ssh backend
    calls `install` once per host, after checking the host; docs/real-machines.md).
    It should be quick when already installed: it runs before every run."""

    def install(self, host: HostShell) -> None: ...


class Cluster(Protocol):
    """Where the nodes run. Every method may block; the runner calls them in a thread.

    This is what every backend does; what else it can do (start and stop nodes, signal,
    pause, reach their network, their files, their logs) are the small protocols of
    cluster.capabilities, which faults ask for by name before the run."""

    system: System
    nodes: list[NodeSpec]

    def up(self) -> None:
        """Create and start every node (idempotent for nodes already running)."""
        ...

    def down(self) -> None:
        """Remove every node and everything made for them. Safe to call twice."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the results record about this cluster (image, network, nodes)."""
        ...


def collect_logs(cluster: Cluster, dest: Path) -> list[Path]:
    """Each node's log into dest/NAME.log; a node whose log cannot be read is noted in it
    (a backend without logs writes none)."""
    if not isinstance(cluster, Logs):
        return []
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


def collect_data(cluster: Cluster, dest: Path) -> list[str]:
    """Each node's data directory into dest/NAME/data/, through the backend's Files (as
    it is on disk at the time: copied from members still running, as Jepsen does). What
    could not be copied, one line per node; the copies made stay. A node without a data
    directory (a system that keeps nothing on disk) has none copied, and is no problem."""
    if not isinstance(cluster, CopyOut):
        return [f"this backend cannot copy the nodes' files ({type(cluster).__name__})"]
    problems = []
    for node in cluster.nodes:
        staging = dest / node.name / ".data-copy"
        target = dest / node.name / "data"
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            try:
                cluster.copy_out(node.name, node.data_dir, staging)
            except Exception as e:
                if isinstance(e, FileNotFoundError) or (
                    isinstance(cluster, Files) and not cluster.exists(node.name, node.data_dir)
                ):
                    continue  # a system that keeps nothing on disk (or never started)
                raise
            copied = staging / posixpath.basename(node.data_dir.rstrip("/"))
            if not copied.is_dir():
                raise NotADirectoryError(f"{node.data_dir} is not a directory")
            shutil.rmtree(target, ignore_errors=True)
            copied.rename(target)
        except Exception as e:  # evidence, never a reason to fail the run
            problems.append(f"{node.name}: {node.data_dir}: {type(e).__name__}: {e}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                (dest / node.name).rmdir()  # only when nothing was copied
    return problems


def drop_data(dest: Path) -> int:
    """The data directories collect_data copied under dest; how many were removed."""
    dropped = 0
    for data in sorted(dest.glob("*/data")):
        shutil.rmtree(data)
        with contextlib.suppress(OSError):
            data.parent.rmdir()
        dropped += 1
    return dropped


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
    image: NodeImage = CHECKOUT_IMAGE  # Python, for members written in it
    data_dir: str = "/var/lib/splitbrain"
    client_port: int = 2379
    peer_port: int = 2380
    env: Mapping[str, str] = field(default_factory=dict)
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
            return await etcd_v3.leader([client_node(n) for n in nodes], timeout)
        stats = await asyncio.gather(
            *(get_json(client_node(n), "/v2/stats/self", timeout) for n in nodes)
        )
        answered = [(n.name, s) for n, s in zip(nodes, stats, strict=True) if isinstance(s, dict)]
        followed = {s.get("leaderInfo", {}).get("leader") for _, s in answered}
        for name, s in answered:
            if s.get("state") == "StateLeader" and followed == {s.get("id")}:
                return name
        return None

    async def healthy(self, node: NodeSpec, timeout: float = 1.0) -> bool:
        found = await get_json(client_node(node), "/health", timeout)
        return isinstance(found, dict) and found.get("health") in ("true", True)

    async def version(self, node: NodeSpec, timeout: float = 1.0) -> str | None:
        found = await get_json(client_node(node), "/version", timeout)
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
    image: NodeImage = ETCD_IMAGE


@dataclass
class Store(EtcdLike):
    """Our Raft store (`python -m store`), started with the same flags as etcd."""

    name: str = "store"
    image: NodeImage = CHECKOUT_IMAGE
    # Planted bugs to turn on in every member (store/failpoints.py, docs/store.md),
    # passed in SPLITBRAIN_FAILPOINTS: `system_options: {failpoints: [vote-no-log-check]}`;
    # an item may carry an action: `answer-before-persist=flush(3600)`.
    failpoints: Sequence[str] = ()

    def __post_init__(self) -> None:
        from store.failpoints import ENV, FailpointError, parse_actions, spell

        if isinstance(self.failpoints, str) or not all(
                isinstance(f, str) for f in self.failpoints):
            raise BadSystem(f"failpoints: expected a list of names, got {self.failpoints!r}")
        try:
            actions = parse_actions(",".join(self.failpoints), "failpoints")
        except FailpointError as e:
            raise BadSystem(str(e)) from None
        listed = spell(actions)
        self.failpoints = tuple(listed.split(",")) if listed else ()
        if actions:
            self.env = {**self.env, ENV: listed}

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
