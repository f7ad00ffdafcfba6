"""A cluster of real machines reached over SSH: one member per host, as Jepsen runs them.

`SshCluster` drives N hosts from this machine (the control node) with asyncssh. One
connection per host is opened before the run and kept for all of it: members' start
and stop, faults (iptables, signals, the clock file) and log collection all go
through it. The harness reaches the members at the hosts' addresses, as it reaches
Docker nodes at theirs; nothing else is asked of the hosts' network.

What is checked before anything is changed on a host (each failure is one line, and
the run exits 3): the host answers on its SSH port, its host key is known (known-hosts
checking is on unless `ssh.strict_host_keys: false`, which the run says loudly), the
key or agent is accepted, the user is root or may `sudo -n`, the system's program is
there (and Python, when our venv is needed, is this control node's minor version).

On each host, under `ssh.root` (default /var/lib/splitbrain):
- `venv-HASH/`: our store and the NFQUEUE delayer, installed offline from wheels this
  machine builds of the checkout, with only the dependencies a member imports (cached
  by content hash, as the node image is: `install_hash`), left for the next run;
- `runs/RUN/` for one run: `data/` (the member's data directory), `member.log`,
  `member.pid` (the member is a daemon in a session of its own, as Jepsen's
  start-daemon starts it); removed at the end;
- iptables chains named `splitbrain-*` (the faults' own), jumped to from INPUT;
  every one is removed at the end, whatever happened.

`down()` stops every member (SIGTERM, then SIGKILL after a grace period), removes the
chains and the delayer, and the run's directory; the runner calls it on every exit,
Ctrl-C included. One run at a time on a set of hosts: the chains are per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shlex
import socket
import sys
import tarfile
import tempfile
import threading
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

with warnings.catch_warnings():  # asyncssh imports cryptography's deprecated DSA
    warnings.simplefilter("ignore")
    import asyncssh

from cluster.node import NodeDown, NodeSpec
from harness.spec import SshSpec
from harness.system import HostInstall, System

# asyncssh says every channel it opens at INFO: harness.log keeps its warnings only
logging.getLogger("asyncssh").setLevel(logging.WARNING)

T = TypeVar("T")
CONNECT_S = 10.0
COMMAND_S = 120.0
INSTALL_S = 900.0  # pip installing into a venv on a slow host
KEEPALIVE_S = 15.0  # a host that stops answering is noticed, not waited on forever
STOP_GRACE_S = 10.0
CHAIN_PREFIX = "splitbrain-"
DELAYER_PIDFILE = "/tmp/splitbrain-delayer.pid"  # nemesis/packets.py's PIDFILE


class SshError(RuntimeError):
    """A host cannot be used; the message names it and says why, in one line."""


class _LoopThread:
    """An event loop of its own in a daemon thread, so that the connections outlive the
    runner's loop and any thread (the runner calls a cluster's methods from threads)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ssh", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result; interrupted (Ctrl-C), the coroutine is cancelled."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


@dataclass
class Host:
    """One host: the connection, and whether commands need sudo."""

    name: str  # the member's name, n1..nN
    address: str  # as given
    ip: str  # as this machine resolves it: where clients and peers reach the member
    conn: asyncssh.SSHClientConnection
    sudo: bool = False

    def wrap(self, script: str, privileged: bool) -> str:
        command = f"sh -c {shlex.quote(script)}"
        return f"sudo -n {command}" if privileged and self.sudo else command

    async def sh(self, script: str, privileged: bool = True,
                 timeout: float = COMMAND_S) -> tuple[int, str]:  # fmt: skip
        """(exit code, stdout and stderr) of a shell script on the host."""
        done = await self.conn.run(self.wrap(script, privileged), check=False, timeout=timeout,
                                   stderr=asyncssh.STDOUT)  # fmt: skip
        return int(done.exit_status if done.exit_status is not None else 255), str(done.stdout)

    async def check(self, script: str, what: str, timeout: float = COMMAND_S) -> str:
        code, out = await self.sh(script, timeout=timeout)
        if code != 0:
            raise SshError(f"host {self.address}: {what} failed ({code}): {_last(out)}")
        return out


def _last(text: str, limit: int = 300) -> str:
    """The end of a command's output on one line."""
    line = " / ".join(part for part in text.strip().splitlines()[-3:] if part)
    return line[-limit:] if line else "(no output)"


def resolve(address: str) -> str:
    """The IPv4 address of a host name (an address stays itself)."""
    try:
        return socket.getaddrinfo(address, None, socket.AF_INET)[0][4][0]
    except (socket.gaierror, IndexError) as e:
        raise SshError(f"host {address}: cannot resolve its name: {e}") from None


class SshCluster:
    """One member of `system` on each host of `settings.hosts`."""

    def __init__(
        self,
        system: System,
        settings: SshSpec,
        run_id: str,
        say: Callable[[str], None] = lambda line: None,
        env: Mapping[str, str] | None = None,
        venv: bool = True,
    ) -> None:
        if not settings.hosts:
            raise SshError("the ssh backend needs hosts (ssh.hosts, or --hosts h1,h2,...)")
        self.system = system
        self.settings = settings
        self.run_id = run_id
        self.say = say
        self.env = {**(getattr(system, "env", None) or {}), **(env or {})}
        self.venv = venv  # our store and the delayer on every host
        self.install_dir = f"{settings.root}/venv-{install_hash()}" if venv else None
        self.run_dir = f"{settings.root}/runs/{run_id}"
        self.token = f"splitbrain-{run_id}"
        self.nodes: list[NodeSpec] = []
        self._hosts: dict[str, Host] = {}
        self._starts: dict[str, int] = {}
        self._paused: set[str] = set()
        self._loop: _LoopThread | None = None

    # -- before the run: connect, check, install

    def prepare(self, wheels: Path | None = None) -> None:
        """Connect to every host, check it can be used, install what members need.
        SshError (one line) if a host cannot be used; nothing is left open then."""
        if not self.settings.strict_host_keys:
            self.say(
                "WARNING: ssh.strict_host_keys is false: the hosts' keys are NOT checked, "
                "so anyone on the path can pose as "
                + ", ".join(self.settings.hosts) + "; use it only for throwaway test hosts"
            )
        self._loop = _LoopThread()
        try:
            self._loop.run(self._prepare(wheels))
        except BaseException:
            self.close()
            raise

    async def _prepare(self, wheels: Path | None) -> None:
        s = self.settings
        ips = [resolve(address) for address in s.hosts]
        conns = await asyncio.gather(*(self._connect(a) for a in s.hosts), return_exceptions=True)
        failed = [c for c in conns if isinstance(c, BaseException)]
        for i, (address, ip, conn) in enumerate(zip(s.hosts, ips, conns, strict=True), 1):
            if isinstance(conn, asyncssh.SSHClientConnection):
                self._hosts[f"n{i}"] = Host(f"n{i}", address, ip, conn)
        if failed:
            raise failed[0]
        self.nodes = [self._node_spec(h) for h in self._hosts.values()]
        await asyncio.gather(*(self._check_privileges(h) for h in self._hosts.values()))
        if self.install_dir is not None:
            if wheels is None:
                wheels = await asyncio.to_thread(host_wheels, self.say)
            await asyncio.gather(*(self._install(h, wheels) for h in self._hosts.values()))
        if isinstance(self.system, HostInstall):
            await asyncio.gather(*(self._install_system(h) for h in self._hosts.values()))
        await asyncio.gather(*(self._check_program(h) for h in self._hosts.values()))

    async def _install_system(self, host: Host) -> None:
        """The system's own `install` step on one host; its failure, in one line."""
        assert isinstance(self.system, HostInstall)
        try:
            await asyncio.to_thread(self.system.install, _Shell(self, host))
        except Exception as e:
            raise SshError(f"host {host.address}: installing {self.system.name} failed: "
                           f"{type(e).__name__}: {_last(str(e))}") from None

    async def _connect(self, address: str) -> asyncssh.SSHClientConnection:
        s = self.settings
        options: dict[str, Any] = {
            "port": s.port, "username": s.user, "connect_timeout": CONNECT_S,
            "keepalive_interval": KEEPALIVE_S,
            "known_hosts": (
                (os.path.expanduser(s.known_hosts) if s.known_hosts else ())
                if s.strict_host_keys else None),
        }  # fmt: skip
        if s.identity is not None:
            options.update(client_keys=[os.path.expanduser(s.identity)], agent_path=None)
        where = f"host {address}:{s.port}"
        try:
            return await asyncssh.connect(address, **options)
        except asyncssh.HostKeyNotVerifiable as e:
            known = s.known_hosts or "~/.ssh/known_hosts"
            raise SshError(
                f"{where}: its host key is not verified by {known} ({e.reason}); add the "
                "host's key there (ssh-keyscan, then check it), or set "
                "ssh.strict_host_keys: false for throwaway hosts"
            ) from None
        except asyncssh.PermissionDenied:
            key = s.identity or "the SSH agent's and ~/.ssh's keys"
            raise SshError(f"{where}: user {s.user} was refused with {key} (wrong key?)") from None
        except asyncssh.KeyImportError as e:
            raise SshError(f"ssh.identity {s.identity}: not a usable private key: {e}") from None
        except (OSError, asyncssh.Error, TimeoutError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
            raise SshError(f"{where}: cannot connect over SSH: {reason or type(e).__name__}"
                           ) from None

    def _node_spec(self, host: Host) -> NodeSpec:
        python = f"{self.install_dir}/bin/python" if self.install_dir else "python3"
        return NodeSpec(
            host.name, host.ip, int(getattr(self.system, "client_port", 2379)),
            int(getattr(self.system, "peer_port", 2380)), f"{self.run_dir}/data", python,
        )  # fmt: skip

    async def _check_privileges(self, host: Host) -> None:
        code, out = await host.sh("id -u", privileged=False)
        if code != 0:
            raise SshError(f"host {host.address}: `id -u` failed: {_last(out)}")
        if out.strip() == "0":
            return
        host.sudo = True
        code, out = await host.sh("true")
        if code != 0:
            raise SshError(
                f"host {host.address}: user {self.settings.user} is not root and cannot sudo "
                f"without a password (sudo -n: {_last(out, 120)}); the harness needs root "
                "there for iptables, signals and its directories (docs/real-machines.md)"
            )

    async def _install(self, host: Host, wheels: Path) -> None:
        """Our venv, from the wheels, unless this content hash is installed already."""
        assert self.install_dir is not None
        target = self.install_dir
        if (await host.sh(f"test -f {target}/.complete"))[0] == 0:
            self.say(f"{host.name} ({host.address}): {target} already installed")
            return
        want = f"{sys.version_info.major}.{sys.version_info.minor}"
        code, out = await host.sh("python3 -c 'import sys; print(*sys.version_info[:2], sep=\".\")'"
                                  " && python3 -c 'import venv, ensurepip'", privileged=False)
        found = out.strip().splitlines()[0] if code == 0 and out.strip() else None
        if found != want:
            raise SshError(
                f"host {host.address}: our store needs Python {want} with venv "
                f"(python3 and python3-venv), as on this control node; found "
                f"{found or 'none: ' + _last(out, 120)}"
            )
        self.say(f"{host.name} ({host.address}): installing our store into {target}")
        upload = f"/tmp/splitbrain-wheels-{self.run_id}"
        await host.sh(f"rm -rf {upload} && mkdir -p {upload}", privileged=False)
        async with host.conn.start_sftp_client() as sftp:
            await sftp.put([str(p) for p in sorted(wheels.iterdir())
                            if not p.name.startswith(".")], upload)
        packages = " ".join(["splitbrain", *(r.split("==")[0] for r in host_requirements())])
        await host.check(
            f"rm -rf {target} && mkdir -p {self.settings.root} && python3 -m venv {target} && "
            f"{target}/bin/pip install --quiet --no-index --no-deps --find-links {upload} "
            f"{packages} && "
            f"cp {upload}/delayer.py {target}/delayer.py && touch {target}/.complete; "
            f"status=$?; rm -rf {upload}; exit $status",
            f"installing our store into {target}", INSTALL_S,
        )

    async def _check_program(self, host: Host) -> None:
        node = next(n for n in self.nodes if n.name == host.name)
        program = self.system.command(node, self.nodes, self.token, True)[0]
        code, _ = await host.sh(f"command -v {shlex.quote(program)}")
        if code != 0:
            raise SshError(
                f"host {host.address}: {program} is not there for {self.system.name} "
                "(install the host's package, or give its path in system_options.program)"
            )

    # -- lifecycle (harness.system.Cluster)

    def up(self) -> None:
        for name in self._hosts:
            if not self.running(name):
                self.start(name)

    def down(self) -> None:
        """Every member stopped, every splitbrain chain and the delayer removed, the
        run's directory removed; then the connections closed. Safe to call twice."""
        if self._loop is None:
            return
        try:
            outcomes = self._loop.run(self._down())
        finally:
            self.close()
        failed = [f"{h}: {o}" for h, o in outcomes if o is not None]
        if failed:
            raise SshError("cleaning the hosts failed: " + "; ".join(failed))

    async def _down(self) -> list[tuple[str, str | None]]:
        async def one(host: Host) -> tuple[str, str | None]:
            try:
                code, out = await host.sh(
                    f"{self._stop_script(STOP_GRACE_S)}; {clean_network_script()}; "
                    f"rm -rf {self.run_dir}"
                )
            except (OSError, asyncssh.Error) as e:
                return host.address, str(e)
            return host.address, None if code == 0 else _last(out)

        return list(await asyncio.gather(*(one(h) for h in self._hosts.values())))

    def close(self) -> None:
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        with contextlib.suppress(Exception):
            for host in self._hosts.values():
                host.conn.close()
            loop.run(self._wait_closed())
        loop.close()

    async def _wait_closed(self) -> None:
        await asyncio.gather(*(h.conn.wait_closed() for h in self._hosts.values()),
                             return_exceptions=True)  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "ssh",
            "user": self.settings.user,
            "port": self.settings.port,
            "strict_host_keys": self.settings.strict_host_keys,
            "hosts": {h.name: h.address for h in self._hosts.values()},
            "nodes": {n.name: n.host for n in self.nodes},
            "install": self.install_dir,
            "run_dir": self.run_dir,
        }

    # -- members as daemons

    def _pid(self) -> str:
        """A shell snippet: P is the member's pid if it runs (its cwd is the run's
        directory, so a reused pid is not taken for it), else empty."""
        d = self.run_dir
        return (f"P=$(cat {d}/member.pid 2>/dev/null); [ -n \"$P\" ] && "
                f"[ \"$(readlink /proc/$P/cwd 2>/dev/null)\" = \"$(readlink -f {d})\" ] || P=")

    def _stop_script(self, grace: float) -> str:
        loops = int(grace / 0.05)
        return (
            f"{self._pid()}; if [ -n \"$P\" ]; then kill -TERM $P; kill -CONT $P; "
            f"i=0; while kill -0 $P 2>/dev/null && [ $i -lt {loops} ]; do sleep 0.05; "
            "i=$((i+1)); done; kill -KILL $P 2>/dev/null; fi; true"
        )

    def _host(self, name: str) -> Host:
        try:
            return self._hosts[name]
        except KeyError:
            raise KeyError(f"no node {name!r} in run {self.run_id}") from None

    def _run(self, name: str, script: str) -> tuple[int, str]:
        assert self._loop is not None, "the cluster is not prepared (or already down)"
        return self._loop.run(self._host(name).sh(script))

    def start(self, name: str) -> None:
        """Start the member (again, on its data) as a daemon: a session of its own, its
        pid in member.pid, its output in member.log."""
        if name in self._paused:
            self.resume(name)
        if self.running(name):
            return
        node = next(n for n in self.nodes if n.name == name)
        new = self._starts.get(name, 0) == 0
        argv = self.system.command(node, self.nodes, self.token, new)
        env = " ".join(shlex.quote(f"{k}={v}") for k, v in
                       {**self.env, "PYTHONUNBUFFERED": "1"}.items())  # fmt: skip
        d = self.run_dir
        inner = f"echo $$ > {d}/member.pid; exec env {env} {shlex.join(argv)}"
        script = (
            f"mkdir -p {d}/data && cd {d} && rm -f member.pid && "
            f"(setsid sh -c {shlex.quote(inner)} >> member.log 2>&1 < /dev/null &) && "
            "i=0; while [ ! -s member.pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
            f"{self._pid()}; [ -n \"$P\" ] || {{ tail -n 20 member.log; exit 1; }}"
        )
        code, out = self._run(name, script)
        if code != 0:
            raise SshError(f"{name} ({self._host(name).address}): the member did not start: "
                           f"{_last(out)}")  # fmt: skip
        self._starts[name] = self._starts.get(name, 0) + 1

    def running(self, name: str) -> bool:
        code, _ = self._run(name, f"{self._pid()}; [ -n \"$P\" ]")
        return code == 0

    def kill(self, name: str, signal: str = "SIGKILL") -> None:
        """The signal to the member's pid; when it ends the member, wait until it has."""
        sig = signal.removeprefix("SIG")
        script = (
            f"{self._pid()}; [ -n \"$P\" ] || exit 0; kill -{sig} $P; kill -CONT $P; "
            "i=0; while kill -0 $P 2>/dev/null && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); "
            "done; ! kill -0 $P 2>/dev/null || { echo still running after 15 s; exit 1; }"
        )
        code, out = self._run(name, script)
        self._paused.discard(name)
        if code != 0:
            raise SshError(f"{name}: kill -{sig} did not end it: {_last(out)}")

    def pause(self, name: str) -> None:
        code, _ = self._run(name, f"{self._pid()}; [ -n \"$P\" ] && kill -STOP $P")
        if code != 0:
            raise NodeDown(f"{name} is down")
        self._paused.add(name)

    def resume(self, name: str) -> None:
        self._run(name, f"{self._pid()}; [ -z \"$P\" ] || kill -CONT $P")
        self._paused.discard(name)

    # -- network, files, logs (cluster.capabilities)

    def net_exec(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """A command on the host, as root: the host's network is the member's."""
        return self._run(name, shlex.join(argv))

    def delayer(self) -> list[str]:
        if self.install_dir is None:
            return ["false"]  # no venv on the hosts: delay is refused by its probe
        return [f"{self.install_dir}/bin/python", f"{self.install_dir}/delayer.py"]

    def copy_in(self, name: str, source: Path, dest: str) -> None:
        """By SFTP, as the user; through a temporary file and sudo when not root."""
        host = self._host(name)
        assert self._loop is not None

        async def put() -> None:
            target = dest if not host.sudo else f"/tmp/splitbrain-upload-{self.run_id}-{name}"
            async with host.conn.start_sftp_client() as sftp:
                await sftp.put(str(source), target)
            if host.sudo:
                await host.check(f"mv {shlex.quote(target)} {shlex.quote(dest)}", f"moving {dest}")

        self._loop.run(put())

    def copy_out(self, name: str, path: str, dest: Path) -> None:
        """A file or directory of the host, read as root (data directories are not the
        user's to read), streamed as a tar archive."""
        host = self._host(name)
        assert self._loop is not None
        parent, _, base = path.rstrip("/").rpartition("/")
        command = host.wrap(f"tar -C {shlex.quote(parent or '/')} -cf - {shlex.quote(base)}",
                            privileged=True)  # fmt: skip
        done = self._loop.run(host.conn.run(command, check=False, encoding=None))
        if done.exit_status != 0:
            raise SshError(f"{name}: cannot read {path}: {_last(bytes(done.stderr).decode())}")
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(bytes(done.stdout))) as archive:
            archive.extractall(dest, filter="data")

    def exists(self, name: str, path: str) -> bool:
        host = self._host(name)
        assert self._loop is not None

        async def stat() -> bool:
            async with host.conn.start_sftp_client() as sftp:
                return bool(await sftp.exists(path))

        return self._loop.run(stat())

    def logs(self, name: str) -> bytes:
        """member.log, by SFTP."""
        host = self._host(name)
        assert self._loop is not None

        async def read() -> bytes:
            async with host.conn.start_sftp_client() as sftp, sftp.open(
                f"{self.run_dir}/member.log", "rb"
            ) as f:
                return bytes(await f.read())

        return self._loop.run(read())


class _Shell:
    """What a system's `install` step may do on one host (harness.system.HostShell)."""

    def __init__(self, cluster: SshCluster, host: Host) -> None:
        self._cluster, self._host = cluster, host
        self.address = host.address

    def run(self, script: str) -> tuple[int, str]:
        assert self._cluster._loop is not None
        return self._cluster._loop.run(self._host.sh(script))

    def put(self, source: Path, dest: str) -> None:
        self._cluster.copy_in(self._host.name, source, dest)


def clean_network_script() -> str:
    """Every iptables chain named splitbrain-* unhooked from INPUT and OUTPUT, flushed
    and deleted, and the NFQUEUE delayer stopped (what faults may have left)."""
    return (
        f"(kill $(cat {DELAYER_PIDFILE}) 2>/dev/null; rm -f {DELAYER_PIDFILE}); "
        "if command -v iptables >/dev/null; then "
        f"for c in $(iptables -w -S | sed -n 's/^-N \\({CHAIN_PREFIX}[^ ]*\\)$/\\1/p'); do "
        "while iptables -w -D INPUT -j $c 2>/dev/null; do :; done; "
        "while iptables -w -D OUTPUT -j $c 2>/dev/null; do :; done; "
        "iptables -w -F $c && iptables -w -X $c || exit 1; done; fi; true"
    )


# What a member of our store imports (`python -m store` needs no more of splitbrain's
# dependencies: the checkers' and the report's stay on the control node), and the
# delayer's NetfilterQueue.
MEMBER_DEPENDENCIES = ("httptools", "uvloop")


def host_requirements() -> list[str]:
    """The packages of a host's venv besides splitbrain, pinned as installed here."""
    from harness.image import HELPER_REQUIREMENTS, pinned_requirements

    pins = {r.split("==")[0].lower(): r for r in pinned_requirements()}
    return [pins[name] for name in MEMBER_DEPENDENCIES] + list(HELPER_REQUIREMENTS)


def install_hash() -> str:
    """What goes into a host's venv: the store's sources, the pinned dependencies, the
    delayer and its requirements (as harness.image hashes the node image)."""
    from harness.image import DELAYER, ROOT, _digest, source_files

    parts = [b"ssh-venv", sys.version.split()[0].rsplit(".", 1)[0].encode(),
             *(r.encode() for r in host_requirements())]
    for path in source_files(ROOT):
        parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    parts.append(DELAYER.read_bytes())
    return _digest(parts)


def host_wheels(say: Callable[[str], None]) -> Path:
    """The wheels of splitbrain (no dependencies), of what a member imports and of the
    delayer's NetfilterQueue, with the delayer
    beside them: cached on this machine by `install_hash`, built now when missing."""
    from harness.image import DELAYER, ROOT, build_wheels, cache_dir

    path = cache_dir() / f"host-wheels-{install_hash()}"
    if (path / ".complete").is_file():
        return path
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        staging = Path(tmp) / "wheels"
        staging.mkdir()
        build_wheels(staging, say, [str(ROOT), *host_requirements()], host_requirements(),
                     no_deps=True)
        (staging / "delayer.py").write_bytes(DELAYER.read_bytes())
        (staging / ".complete").touch()
        with contextlib.suppress(OSError):
            staging.rename(path)
    return path
