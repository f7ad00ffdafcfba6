"""A cluster of local processes: the `Cluster` backend for 127.0.0.1.

`LocalCluster` runs N members of a system (our store, etcd 3.4, or a user's) on
127.0.0.1 as child processes, each with its own ports, data dir and log file under one
root, started by the system's own command line. Tests, benchmarks and `splitbrain run
--backend local` use it to hurt them: kill, pause, resume, restart. Network faults need
a node of their own and are Docker's (harness.docker): local members share the host.

Members never outlive us: `stop()` runs on context exit (so on KeyboardInterrupt too) and
on interpreter exit (atexit), and every member is spawned with PR_SET_PDEATHSIG from one
long-lived thread, so the kernel kills it if this process dies without cleaning up
(SIGKILL, or SIGTERM with no handler).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from harness.blocking_http import HOST, KeepAliveClient, fetch_json
from harness.system import NodeSpec, System, make_system

Kind = Literal["store", "etcd"]
PORT_MIN, PORT_MAX = 10_000, 32_000  # below the kernel's ephemeral range (32768+)
STOP_GRACE_S = 10.0
POLL_S = 0.05


# -- ports and process spawning ----------------------------------------------------------

_ports_lock = threading.Lock()
_ports_given: set[int] = set()
_next_port = PORT_MIN + (os.getpid() * 7919) % (PORT_MAX - PORT_MIN)


def free_port() -> int:
    """A port below 32768 that nobody listens on now and we have not handed out before.

    The scan starts at an offset derived from our pid, so concurrent test runs on one
    machine tend to use different ranges. A port can still be taken between this
    check and the child's bind; the child then fails to start and says so in its log.
    """
    global _next_port
    with _ports_lock:
        for _ in range(PORT_MAX - PORT_MIN):
            port = _next_port
            _next_port = PORT_MIN + (port + 1 - PORT_MIN) % (PORT_MAX - PORT_MIN)
            if port in _ports_given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((HOST, port))
                except OSError:
                    continue
            _ports_given.add(port)
            return port
    raise RuntimeError(f"no free port in {PORT_MIN}..{PORT_MAX}")


_PR_SET_PDEATHSIG = 1
try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, so every member is
# forked by one daemon thread, which ends with the process (after the atexit handlers).
_spawn_requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()


def _spawner() -> None:
    while True:
        job, result = _spawn_requests.get()
        try:
            result.set_result(job())
        except BaseException as e:
            result.set_exception(e)


_spawner_lock = threading.Lock()
_spawner_thread: threading.Thread | None = None


def _spawn(
    argv: Sequence[str], log: IO[bytes], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    def run() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # Ctrl-C reaches us only; we stop members in order
            preexec_fn=_die_with_parent,
        )

    global _spawner_thread
    with _spawner_lock:
        if _spawner_thread is None:
            _spawner_thread = threading.Thread(target=_spawner, name="local-spawner", daemon=True)
            _spawner_thread.start()
    result: Future[subprocess.Popen[bytes]] = Future()
    _spawn_requests.put((run, result))
    return result.result()


# -- the cluster -------------------------------------------------------------------------


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False
    wanted: bool = False  # started and not since stopped or killed on purpose
    starts: int = 0
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class MemberDied(RuntimeError):
    pass


_live_clusters: weakref.WeakSet[LocalCluster] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for cluster in list(_live_clusters):
        cluster.stop()


class LocalCluster:
    """N members of one kind on 127.0.0.1, each a child process with its own data dir.

    Use as a context manager; `start()` returns once every process is spawned (call
    `wait_ready()` to wait for a leader). Members are named n1..nN.
    """

    def __init__(
        self,
        size: int = 3,
        system: System | Kind = "store",
        root: str | os.PathLike[str] | None = None,
        *,
        heartbeat_ms: int = 100,
        election_ms: int = 1000,
        snapshot_count: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        if isinstance(system, str):
            flags = tuple(extra_args)
            if snapshot_count is not None:
                flags += ("--snapshot-count", str(snapshot_count))
            options = {
                "heartbeat_ms": heartbeat_ms,
                "election_ms": election_ms,
                "extra_args": flags,
            }
            system = make_system(system, options)
        self.system: System = system
        self.kind = system.name
        self._tmp = (
            None if root is not None else tempfile.TemporaryDirectory(prefix=f"{self.kind}-")
        )
        # absolute: the members run in it, and their data directories must not be read
        # relative to it (a relative results folder nested them and raced their creation)
        self.root = Path(
            root if root is not None else self._tmp.name  # type: ignore[union-attr]
        ).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        system_env = getattr(system, "env", None) or {}  # as a container would get it
        self.env = {**os.environ, **system_env, **(env or {})}
        self.token = token or f"{self.kind}-{os.getpid()}-{id(self):x}"
        self._members: dict[str, Member] = {}
        for i in range(1, size + 1):
            name = f"n{i}"
            self._members[name] = Member(
                name=name,
                client_port=free_port(),
                peer_port=free_port(),
                data_dir=self.root / f"{name}.data",
                log_path=self.root / f"{name}.log",
            )
        self.nodes = [
            NodeSpec(m.name, HOST, m.client_port, m.peer_port, str(m.data_dir), sys.executable)
            for m in self._members.values()
        ]
        self._lock = threading.RLock()

    # -- lifecycle

    def __enter__(self) -> LocalCluster:
        try:
            self.up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def up(self) -> None:
        """Spawn every member that is not running."""
        with self._lock:
            for member in self._members.values():
                if not member.running:
                    self._launch(member)

    def down(self) -> None:
        self.stop()

    def start(self, name: str) -> None:
        """Start one member that is not running, on its data dir."""
        with self._lock:
            member = self._members[name]
            if member.paused:
                self.resume(name)
            if not member.running:
                self._launch(member)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the members one at a time, each SIGKILLed if not gone after `grace` s.

        One at a time and the leader first: an etcd leader that stops hands its leadership
        over, which takes seconds when its followers are stopping or gone.
        """
        with self._lock:
            order = list(self._members)
            with contextlib.suppress(LookupError):
                leader = self.leader(timeout=0.5)
                order.sort(key=lambda name: name != leader)
            for member in self._members.values():
                member.wanted = False
            for name in order:
                self.kill(name, signal.SIGTERM, grace)
            _live_clusters.discard(self)
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def kill(
        self, name: str, sig: int | str = signal.SIGKILL, timeout: float = STOP_GRACE_S
    ) -> None:
        """Send `sig` to the member and wait until it has exited (SIGKILL after `timeout`)."""
        if isinstance(sig, str):
            sig = signal.Signals[sig]
        with self._lock:
            member = self._members[name]
            member.wanted = False
            if member.running:
                self._signal(member, sig)
                if member.paused:  # a stopped process acts on SIGTERM only once continued
                    self._signal(member, signal.SIGCONT)
                self._reap(member, time.monotonic() + timeout)
            member.paused = False
            self._close_log(member)

    def pause(self, name: str) -> None:
        with self._lock:
            member = self._members[name]
            self._signal(member, signal.SIGSTOP)
            member.paused = True

    def resume(self, name: str) -> None:
        with self._lock:
            member = self._members[name]
            self._signal(member, signal.SIGCONT)
            member.paused = False

    def restart(self, name: str) -> None:
        """Stop the member if it runs (SIGTERM), then start it again on the same data dir."""
        with self._lock:
            member = self._members[name]
            if member.running:
                self.kill(name, signal.SIGTERM)
            self._launch(member)

    # -- queries

    @property
    def members(self) -> list[str]:
        return list(self._members)

    def member(self, name: str) -> Member:
        return self._members[name]

    def client_url(self, name: str) -> str:
        return self._members[name].client_url

    def client(self, name: str, timeout: float = 5.0) -> KeepAliveClient:
        return KeepAliveClient(self.client_url(name), timeout)

    def live(self) -> list[str]:
        """Members whose process runs and is not paused."""
        return [n for n, m in self._members.items() if m.running and not m.paused]

    def logs(self, name: str) -> bytes:
        member = self._members[name]
        if member._log is not None:
            member._log.flush()
        try:
            return member.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def stats(self, name: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """/v2/stats/self of the member, or None if it does not answer."""
        found = fetch_json(self.client_url(name) + "/v2/stats/self", timeout)
        return found if isinstance(found, dict) else None

    def leader(self, timeout: float = 1.0) -> str:
        """The live member that says it leads and whom every other live member follows.

        Raises LookupError when there is no such member right now.
        """
        live = [n for n in self.nodes if n.name in self.live()]
        found = asyncio.run(self.system.leader(live, timeout))
        if found is None:
            stats = {name: self.stats(name, timeout) for name in self.live()}
            raise LookupError(f"no agreed leader among {sorted(stats)}: {_state_summary(stats)}")
        return found

    def running(self, name: str) -> bool:
        return self._members[name].running

    def copy_in(self, name: str, source: Path, dest: str) -> None:
        shutil.copy(source, dest)

    def copy_out(self, name: str, path: str, dest: Path) -> None:
        found = Path(path)
        if found.is_dir():
            shutil.copytree(found, dest / found.name, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(found, dest)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "root": str(self.root),
            "nodes": {m.name: m.client_url for m in self._members.values()},
        }

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Poll until every live member answers /health and they agree on a leader.

        Returns the leader's name. Raises MemberDied if a member's process exits, and
        TimeoutError (with every member's state and log tail) after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            live = self.live()
            healthy = all(_is_healthy(self.client_url(n)) for n in live)
            if healthy:
                with contextlib.suppress(LookupError):
                    return self.leader()
            if time.monotonic() >= deadline:
                raise TimeoutError(self._describe(f"no ready leader after {timeout:.1f}s"))
            time.sleep(POLL_S)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `condition` until it holds; TimeoutError naming `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            self._check_alive()
            if time.monotonic() >= deadline:
                raise TimeoutError(self._describe(f"timed out after {timeout:.1f}s: {what}"))
            time.sleep(POLL_S)

    # -- internals

    def argv(self, member: Member) -> list[str]:
        """The command line of a member: the system's, with this cluster's addresses."""
        spec = next(n for n in self.nodes if n.name == member.name)
        # A member killed before it wrote its data dir starts as new again (a member that
        # says "existing" over an empty data dir is refused, as etcd refuses it).
        new = member.starts == 0 or not (member.data_dir / "member").exists()
        return self.system.command(spec, self.nodes, self.token, new=new)

    def _launch(self, member: Member) -> None:
        _live_clusters.add(self)
        self._close_log(member)
        member._log = open(member.log_path, "ab")  # noqa: SIM115 (closed on kill/stop)
        argv = self.argv(member)
        member._log.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
        member._log.flush()
        member.process = _spawn(argv, member._log, self.env, self.root)
        member.paused = False
        member.wanted = True
        member.starts += 1

    @staticmethod
    def _signal(member: Member, sig: int) -> None:
        if member.process is not None and member.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.process.pid, sig)

    @staticmethod
    def _reap(member: Member, deadline: float) -> None:
        assert member.process is not None
        try:
            member.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.process.pid, signal.SIGKILL)
            member.process.wait()

    @staticmethod
    def _close_log(member: Member) -> None:
        if member._log is not None and not member.running:
            member._log.close()
            member._log = None

    def _check_alive(self) -> None:
        for name, member in self._members.items():
            if member.wanted and not member.running:
                member.wanted = False
                self._close_log(member)
                raise MemberDied(
                    self._describe(f"{name} exited with status {member.process.returncode}")
                )

    def _describe(self, headline: str, tail_lines: int = 15) -> str:
        lines = [f"{self.kind} cluster in {self.root}: {headline}"]
        for name, member in self._members.items():
            state = "paused" if member.paused else "running" if member.running else "down"
            stats = self.stats(name, 0.5) if state == "running" else None
            lines.append(f"-- {name} pid={member.pid} {state} {_state_summary({name: stats})}")
            log = self.logs(name).decode(errors="replace")
            lines += ["   " + ln for ln in log.splitlines()[-tail_lines:]]
        return "\n".join(lines)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)


def _is_healthy(url: str) -> bool:
    found = fetch_json(url + "/health", 1.0)
    return isinstance(found, dict) and found.get("health") in ("true", True)


def _state_summary(stats: Mapping[str, dict[str, Any] | None]) -> str:
    parts = []
    for name, s in stats.items():
        if not s:
            parts.append(f"{name}: no answer")
        else:
            leader = s.get("leaderInfo", {}).get("leader")
            parts.append(f"{name}: {s.get('state')} id={s.get('id')} leader={leader}")
    return "; ".join(parts)
