"""A cluster of Docker containers on a network of its own.

One `--internal` bridge network per run, on a free /24 picked from a configurable pool
(never one that overlaps a Docker network or a route of this host), nodes `n1..nN` at
fixed addresses, each with a volume for its data directory, so a killed node restarts
on its own data. Nodes run with `--init` (a signal reaches the server, not PID 1) and
`NET_ADMIN` as the only added capability (for the nemesis' iptables rules). Everything
carries the `splitbrain` label, the run id and its owner (harness.labels); `down()`
removes all of it by label, and `remove_leftovers()` clears what a killed run left.

The host reaches the nodes at the addresses Docker reports for this network; no port
is published and the containers have no way out.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import posixpath
import tarfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
from docker.models.containers import Container

from harness.labels import LABEL, OWNER, RUN, labels, owner_alive
from harness.spec import SUBNET_PREFIX
from harness.system import NodeDown, NodeSpec, System

DEFAULT_POOL = "10.97.0.0/16"
CLIENT_PORT, PEER_PORT = 2379, 2380
DATA_ROOT = "/var/lib/splitbrain"
WAIT_S = 15.0
POLL_S = 0.05


class DockerError(RuntimeError):
    pass


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as e:
        raise DockerError(f"cannot reach the Docker engine: {e}") from None
    return client


def host_networks() -> list[ipaddress.IPv4Network]:
    """Networks this host routes to (from /proc/net/route): a subnet must not shadow one."""
    found = []
    with contextlib.suppress(OSError), open("/proc/net/route") as routes:
        next(routes, None)
        for line in routes:
            fields = line.split()
            if len(fields) < 8:
                continue
            dest = int(fields[1], 16).to_bytes(4, "little")
            mask = int(fields[7], 16).to_bytes(4, "little")
            net = ipaddress.IPv4Network(
                f"{ipaddress.IPv4Address(dest)}/{ipaddress.IPv4Address(mask)}"
            )
            if net.prefixlen > 0:  # the default route covers everything; not a conflict
                found.append(net)
    return found


def docker_networks(client: docker.DockerClient) -> list[ipaddress.IPv4Network]:
    found = []
    for network in client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError, KeyError):
                net = ipaddress.ip_network(config["Subnet"])
                if isinstance(net, ipaddress.IPv4Network):
                    found.append(net)
    return found


def free_subnets(pool: str, taken: Iterable[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    whole = ipaddress.IPv4Network(pool)
    taken = list(taken)
    prefix = max(SUBNET_PREFIX, whole.prefixlen)
    return [s for s in whole.subnets(new_prefix=prefix) if not any(s.overlaps(t) for t in taken)]


def remove_leftovers(client: docker.DockerClient, say: Callable[[str], None]) -> int:
    """Remove what runs whose process is gone left behind; say what. Returns the count."""
    removed = 0
    flt = {"label": LABEL}
    for container in client.containers.list(all=True, filters=flt):
        if not owner_alive(container.labels.get(OWNER)):
            run = container.labels.get(RUN, "?")
            say(f"removing container {container.name} left by run {run}, whose process is gone")
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
            removed += 1
    for network in client.networks.list(filters=flt):
        if not owner_alive((network.attrs.get("Labels") or {}).get(OWNER)):
            say(f"removing network {network.name} left by a run whose process is gone")
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
            removed += 1
    for volume in client.volumes.list(filters=flt):
        if not owner_alive((volume.attrs.get("Labels") or {}).get(OWNER)):
            say(f"removing volume {volume.name} left by a run whose process is gone")
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                volume.remove(force=True)
            removed += 1
    return removed


def remove_run(client: docker.DockerClient, run_id: str) -> None:
    """Remove every container, network and volume of one run, whoever made them."""
    flt = {"label": f"{RUN}={run_id}"}
    for container in client.containers.list(all=True, filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    for volume in client.volumes.list(filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


class DockerCluster:
    """N nodes of one system as containers of one image, on this run's own network."""

    def __init__(
        self,
        system: System,
        size: int,
        run_id: str,
        image: str,
        owner: str,
        pool: str = DEFAULT_POOL,
        client: docker.DockerClient | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.system = system
        self.env = dict(env or {})  # for every node's server
        self.size = size
        self.run_id = run_id
        self.image = image
        self.owner = owner
        self.pool = pool
        self.client = client or connect()
        self.labels = labels(run_id, owner)
        self.network_name = f"splitbrain-{run_id}"
        self.subnet: ipaddress.IPv4Network | None = None
        self.nodes: list[NodeSpec] = []
        self._containers: dict[str, Container] = {}

    # -- lifecycle

    def up(self) -> None:
        if self.subnet is None:
            self._create_network()
        for spec in self.nodes:
            if spec.name not in self._containers:
                self._create_node(spec)
        for spec in self.nodes:
            self._check_address(spec)

    def down(self) -> None:
        self._containers.clear()
        remove_run(self.client, self.run_id)

    def _create_network(self) -> None:
        taken = docker_networks(self.client) + host_networks()
        candidates = free_subnets(self.pool, taken)
        if not candidates:
            raise DockerError(f"no free /{SUBNET_PREFIX} left in the pool {self.pool}")
        for subnet in candidates:
            hosts = list(subnet.hosts())
            ipam = docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet=str(subnet), gateway=str(hosts[0]))]
            )
            try:
                self.client.networks.create(
                    self.network_name, driver="bridge", internal=True, ipam=ipam,
                    labels=self.labels, check_duplicate=True,
                )  # fmt: skip
            except docker.errors.APIError as e:
                if "overlap" in str(e).lower():  # taken meanwhile by someone else
                    continue
                raise DockerError(f"cannot create network {self.network_name}: {e}") from None
            self.subnet = subnet
            self.nodes = [
                NodeSpec(f"n{i}", str(hosts[i]), CLIENT_PORT, PEER_PORT, f"{DATA_ROOT}/n{i}")
                for i in range(1, self.size + 1)
            ]
            return
        raise DockerError(f"every /{SUBNET_PREFIX} of {self.pool} overlaps another network")

    def _container_name(self, name: str) -> str:
        return f"splitbrain-{self.run_id}-{name}"

    def _create_node(self, spec: NodeSpec) -> None:
        volume = self.client.volumes.create(
            name=f"{self._container_name(spec.name)}-data", labels=self.labels
        )
        argv = self.system.command(spec, self.nodes, token=f"splitbrain-{self.run_id}", new=True)
        networking = self.client.api.create_networking_config(
            {self.network_name: self.client.api.create_endpoint_config(ipv4_address=spec.host)}
        )
        host_config = self.client.api.create_host_config(
            init=True,
            cap_add=["NET_ADMIN"],
            binds={volume.name: {"bind": DATA_ROOT, "mode": "rw"}},
            network_mode=self.network_name,
        )
        created = self.client.api.create_container(
            self.image, command=argv, name=self._container_name(spec.name),
            hostname=spec.name, labels=self.labels, host_config=host_config,
            environment=self.env,
            networking_config=networking, detach=True,
        )  # fmt: skip
        container = self.client.containers.get(created["Id"])
        self._containers[spec.name] = container
        container.start()

    def _check_address(self, spec: NodeSpec) -> None:
        """Traffic goes only to the address Docker reports for this run's network."""
        container = self._container(spec.name)
        container.reload()
        found = container.attrs["NetworkSettings"]["Networks"][self.network_name]["IPAddress"]
        if found != spec.host:
            raise DockerError(f"{spec.name} is at {found} on {self.network_name}, not {spec.host}")

    # -- faults

    def _container(self, name: str) -> Container:
        try:
            return self._containers[name]
        except KeyError:
            raise KeyError(f"no node {name!r} in run {self.run_id}") from None

    def _wait_status(self, container: Container, wanted: Sequence[str]) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            container.reload()
            if container.status in wanted:
                return
            if time.monotonic() > deadline:
                raise DockerError(
                    f"{container.name} is {container.status}, not {'/'.join(wanted)}, "
                    f"after {WAIT_S:g} s"
                )
            time.sleep(POLL_S)

    def kill(self, name: str, signal: str = "SIGKILL") -> None:
        container = self._container(name)
        container.reload()
        if container.status == "running":
            with contextlib.suppress(docker.errors.APIError):  # it may exit meanwhile
                container.kill(signal)
        self._wait_status(container, ("exited", "dead", "created"))

    def start(self, name: str) -> None:
        container = self._container(name)
        container.reload()
        if container.status != "running":
            container.start()
        self._wait_status(container, ("running",))

    def pause(self, name: str) -> None:
        """SIGSTOP the server: the child of the node's init (`--init`), which is PID 1
        and would ignore it. Commands run later by exec are not its children."""
        self._signal_server(name, "STOP")

    def resume(self, name: str) -> None:
        self._signal_server(name, "CONT")

    def _signal_server(self, name: str, signal: str) -> None:
        code, output = self.exec(name, ["pkill", f"-{signal}", "-P", "1"])
        if code not in (0, 1):  # 1: no such process (a node that is down)
            raise DockerError(f"cannot send SIG{signal} to the server of {name}: {output}")

    def running(self, name: str) -> bool:
        container = self._container(name)
        container.reload()
        return container.status == "running"

    def exec(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        container = self._container(name)
        try:
            result = container.exec_run(list(argv))
        except docker.errors.APIError as e:
            if e.status_code == 409:  # the container is not running
                raise NodeDown(f"{name} is down") from None
            raise
        return result.exit_code, result.output.decode(errors="replace")

    def logs(self, name: str) -> bytes:
        return self._container(name).logs(stdout=True, stderr=True, timestamps=True)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "docker",
            "image": self.image,
            "network": self.network_name,
            "subnet": str(self.subnet) if self.subnet else None,
            "nodes": {spec.name: spec.host for spec in self.nodes},
        }

    def copy_in(self, name: str, source: Path, dest: str) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(source, arcname=posixpath.basename(dest))
        if not self._container(name).put_archive(posixpath.dirname(dest) or "/", buffer.getvalue()):
            raise DockerError(f"could not copy {source} into {name}:{dest}")

    def copy_out(self, name: str, path: str, dest: Path) -> None:
        stream, _ = self._container(name).get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            archive.extractall(dest, filter="data")
