"""A cluster of Docker containers on a network of its own, any image, faults from outside.

One `--internal` bridge network per run, on a free /24 picked from a configurable pool
(never one that overlaps a Docker network or a route of this host), nodes `n1..nN` at
fixed addresses. Each node is two containers:

- its helper, `splitbrain-RUN-nN-net`, of the helper image (harness.image): it holds
  the node's network namespace (its address on the run's network, its hostname) and
  iptables, tc and the NFQUEUE delayer, with `NET_ADMIN` as its only added capability;
  it runs `sleep infinity` and nothing else of ours;
- the node, `splitbrain-RUN-nN`, of the system's own image (`ContainerSystem.image`),
  joined to that namespace (`network_mode: container:<helper>`), with no added
  capability, `--init` (a signal reaches the server, not PID 1), the system's command
  and environment, and a volume per node at its data directory, so a killed node
  restarts on its own data.

The namespace belongs to the helper, not the node, because a container that restarts
makes a new network namespace of its own: a node that owned it would come back from a
kill without the partition it was killed in, and a helper joined to it would be left in
the dead one. So killing and restarting the node (`docker kill`, `docker start`) leaves
the network faults in force exactly as they were, with no window where a restarted node
talks freely (docs/nemesis.md has the measurement). Everything carries the `splitbrain`
label, the run id and its owner (harness.labels); `down()` removes all of it by label,
and `remove_leftovers()` clears what a killed run left.

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

from cluster.node import NodeDown, NodeSpec
from harness.labels import LABEL, OWNER, RUN, labels, owner_alive
from harness.spec import SUBNET_PREFIX
from harness.system import ContainerSystem

DEFAULT_POOL = "10.97.0.0/16"
ROLE = f"{LABEL}.role"  # "node" or "helper": helpers are removed after their nodes
HELPER_PYTHON = "/opt/splitbrain/bin/python"  # in the helper image (harness.image)
HELPER_DELAYER = "/opt/splitbrain/delayer.py"
WAIT_S = 15.0
POLL_S = 0.05
CPU_PERIOD_US = 100_000  # the CFS period a throttled node's quota is a share of
MIN_QUOTA_US = 1_000  # the kernel's least quota


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
    for container in helpers_last(client.containers.list(all=True, filters=flt)):
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


def helpers_last(containers: list[Container]) -> list[Container]:
    """Nodes before the helpers whose network namespace they use."""
    return sorted(containers, key=lambda c: c.labels.get(ROLE) == "helper")


def remove_run(client: docker.DockerClient, run_id: str) -> None:
    """Remove every container, network and volume of one run, whoever made them."""
    flt = {"label": f"{RUN}={run_id}"}
    for container in helpers_last(client.containers.list(all=True, filters=flt)):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    for volume in client.volumes.list(filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


class DockerCluster:
    """N nodes of one system as containers of its image, each beside a helper container
    that holds its network namespace, on this run's own network."""

    def __init__(
        self,
        system: ContainerSystem,
        size: int,
        run_id: str,
        image: str,
        owner: str,
        pool: str = DEFAULT_POOL,
        client: docker.DockerClient | None = None,
        env: dict[str, str] | None = None,
        helper_image: str | None = None,
    ) -> None:
        if not isinstance(system, ContainerSystem):
            raise DockerError(
                f"the system {system.name!r} cannot run in Docker: it does not say its image, "
                "data directory, ports and environment (harness.system.ContainerSystem)"
            )
        self.system = system
        self.env = {**system.env, **(env or {})}  # for every node's server
        self.size = size
        self.run_id = run_id
        self.image = image
        self.helper_image = helper_image
        self.owner = owner
        self.pool = pool
        self.client = client or connect()
        self.labels = labels(run_id, owner)
        self.network_name = f"splitbrain-{run_id}"
        self.subnet: ipaddress.IPv4Network | None = None
        self.nodes: list[NodeSpec] = []
        self._containers: dict[str, Container] = {}
        self._helpers: dict[str, Container] = {}

    # -- lifecycle

    def up(self) -> None:
        if self.helper_image is None:
            from harness.image import ensure_helper

            self.helper_image = ensure_helper(self.client).tag
        if self.subnet is None:
            self._create_network()
        for spec in self.nodes:
            if spec.name not in self._containers:
                self._create_node(spec)
        for spec in self.nodes:
            self._check_address(spec)

    def down(self) -> None:
        self._containers.clear()
        self._helpers.clear()
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
            system = self.system
            self.nodes = [
                NodeSpec(f"n{i}", str(hosts[i]), system.client_port, system.peer_port,
                         system.data_dir)
                for i in range(1, self.size + 1)
            ]  # fmt: skip
            return
        raise DockerError(f"every /{SUBNET_PREFIX} of {self.pool} overlaps another network")

    def _container_name(self, name: str) -> str:
        return f"splitbrain-{self.run_id}-{name}"

    def _create_node(self, spec: NodeSpec) -> None:
        assert self.helper_image is not None
        helper_name = f"{self._container_name(spec.name)}-net"
        networking = self.client.api.create_networking_config(
            {self.network_name: self.client.api.create_endpoint_config(ipv4_address=spec.host)}
        )
        helper_config = self.client.api.create_host_config(
            init=True, cap_add=["NET_ADMIN"], network_mode=self.network_name
        )
        created = self.client.api.create_container(
            self.helper_image, command=["sleep", "infinity"], name=helper_name,
            hostname=spec.name, labels={**self.labels, ROLE: "helper"},
            host_config=helper_config, networking_config=networking, detach=True,
        )  # fmt: skip
        helper = self.client.containers.get(created["Id"])
        self._helpers[spec.name] = helper
        helper.start()

        volume = self.client.volumes.create(
            name=f"{self._container_name(spec.name)}-data", labels=self.labels
        )
        argv = self.system.command(spec, self.nodes, token=f"splitbrain-{self.run_id}", new=True)
        host_config = self.client.api.create_host_config(
            init=True,
            binds={volume.name: {"bind": self.system.data_dir, "mode": "rw"}},
            network_mode=f"container:{helper.id}",
        )
        try:
            created = self.client.api.create_container(
                self.image, command=argv, name=self._container_name(spec.name),
                labels={**self.labels, ROLE: "node"}, host_config=host_config,
                environment=self.env, detach=True,
            )  # fmt: skip
        except docker.errors.ImageNotFound:
            raise DockerError(f"the node image {self.image!r} is not here") from None
        container = self.client.containers.get(created["Id"])
        self._containers[spec.name] = container
        container.start()

    def _check_address(self, spec: NodeSpec) -> None:
        """Traffic goes only to the address Docker reports for this run's network."""
        helper = self._helper(spec.name)
        helper.reload()
        found = helper.attrs["NetworkSettings"]["Networks"][self.network_name]["IPAddress"]
        if found != spec.host:
            raise DockerError(f"{spec.name} is at {found} on {self.network_name}, not {spec.host}")

    # -- capabilities (cluster.capabilities)

    def _container(self, name: str) -> Container:
        try:
            return self._containers[name]
        except KeyError:
            raise KeyError(f"no node {name!r} in run {self.run_id}") from None

    def _helper(self, name: str) -> Container:
        try:
            return self._helpers[name]
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
        """The signal to the container's main process, through Docker (`--init` passes it
        to the server); waits until the node has exited."""
        container = self._container(name)
        container.reload()
        if container.status == "running":
            with contextlib.suppress(docker.errors.APIError):  # it may exit meanwhile
                container.kill(signal)
        self._wait_status(container, ("exited", "dead", "created"))

    def start(self, name: str) -> None:
        """Start the node again, on its volume, in the namespace its helper kept."""
        container = self._container(name)
        container.reload()
        if container.status == "paused":
            container.unpause()
        elif container.status != "running":
            container.start()
        self._wait_status(container, ("running",))

    def pause(self, name: str) -> None:
        """Freeze every process of the node (`docker pause`, the cgroup freezer)."""
        container = self._container(name)
        try:
            container.pause()
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise
            container.reload()
            if container.status != "paused":  # 409: not running (or paused meanwhile)
                raise NodeDown(f"{name} is down") from None

    def resume(self, name: str) -> None:
        container = self._container(name)
        container.reload()
        if container.status == "paused":
            container.unpause()

    def throttle(self, name: str, cpus: float) -> None:
        """A CPU quota on the node's container (its cgroup), changed while it runs: at most
        `cpus` CPUs' time per period; it survives a restart of the node."""
        quota = max(MIN_QUOTA_US, round(cpus * CPU_PERIOD_US))
        self._container(name).update(cpu_period=CPU_PERIOD_US, cpu_quota=quota)

    def unthrottle(self, name: str) -> None:
        self._container(name).update(cpu_quota=-1)

    def running(self, name: str) -> bool:
        container = self._container(name)
        container.reload()
        return container.status == "running"

    def exec(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """A command in the node's own container (its image must hold the program)."""
        return self._exec(self._container(name), name, argv)

    def net_exec(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """A command in the node's helper: its network namespace, with NET_ADMIN."""
        return self._exec(self._helper(name), name, argv)

    def delayer(self) -> list[str]:
        return [HELPER_PYTHON, HELPER_DELAYER]

    @staticmethod
    def _exec(container: Container, name: str, argv: Sequence[str]) -> tuple[int, str]:
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
            "helper_image": self.helper_image,
            "network": self.network_name,
            "subnet": str(self.subnet) if self.subnet else None,
            "nodes": {spec.name: spec.host for spec in self.nodes},
        }

    def copy_in(self, name: str, source: Path, dest: str) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(source, arcname=posixpath.basename(dest))
        try:
            done = self._container(name).put_archive(
                posixpath.dirname(dest) or "/", buffer.getvalue()
            )
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise NodeDown(f"{name} is down") from None
            raise DockerError(f"could not copy {source} into {name}:{dest}: {e}") from None
        if not done:
            raise DockerError(f"could not copy {source} into {name}:{dest}")

    def copy_out(self, name: str, path: str, dest: Path) -> None:
        stream, _ = self._container(name).get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            archive.extractall(dest, filter="data")

    def exists(self, name: str, path: str) -> bool:
        try:
            self._container(name).get_archive(path)
        except docker.errors.NotFound:
            return False
        return True
