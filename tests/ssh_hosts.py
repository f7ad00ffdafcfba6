"""Hosts for the ssh backend's tests: containers that run sshd, nothing else of ours.

The image is Debian's openssh-server, sudo, Python, iptables, libfaketime and
etcd-server, made offline with mmdebstrap and `docker import` and cached by content
hash (harness.image.ensure_debian). The containers sit on an `--internal` network of
their own (a free /24 of the Docker pool), with NET_ADMIN for iptables and `--init`;
each makes its own host keys as it starts. A throwaway key pair is made per session;
the known_hosts file holds the keys the fixture reads from each container, so the
tests keep host-key checking on. Users: root and `deploy` (passwordless sudo) take the
key; `plain` takes it too but may not sudo. LINKED_ROOT is a symbolic link to
/var/lib/splitbrain (an `ssh.root` reached through a link).

Docker is the fixture's only: the harness reaches the hosts over SSH alone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import docker.types

from harness.docker import docker_networks, free_subnets, host_networks
from harness.image import PYTHON_PACKAGES, ensure_debian
from harness.labels import labels, owner_here

HOST_PACKAGES = (*PYTHON_PACKAGES, "openssh-server", "sudo", "procps", "etcd-server")
SSHD = ("rm -f /etc/ssh/ssh_host_*; ssh-keygen -A -q; mkdir -p /run/sshd; "
        "exec /usr/sbin/sshd -D -e")  # fmt: skip
POOL = "10.98.0.0/16"
LINKED_ROOT = "/srv/splitbrain-link"  # a symbolic link to /var/lib/splitbrain, as `ssh.root`


@dataclass
class SshHosts:
    client: Any
    run_id: str
    network: Any
    containers: list[Any]
    addresses: list[str]
    identity: Path
    known_hosts: Path
    public_key: str

    def ssh(self, count: int, user: str = "root", **extra: Any) -> dict[str, Any]:
        """A spec's `ssh:` section for the first `count` hosts."""
        return {"hosts": self.addresses[:count], "user": user, "identity": str(self.identity),
                "known_hosts": str(self.known_hosts), **extra}  # fmt: skip

    def exec(self, i: int, script: str) -> tuple[int, str]:
        """A check from outside, through Docker (the fixture's, never the harness's)."""
        done = self.containers[i].exec_run(["sh", "-c", script])
        return done.exit_code, done.output.decode(errors="replace")

    def remove(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.network.remove()


def make_hosts(client: Any, count: int, workdir: Path, say: Any = lambda line: None) -> SshHosts:
    from harness.ssh import asyncssh  # imported there without its DSA warnings

    image = ensure_debian(client, HOST_PACKAGES, say, variant="minbase")
    run_id = f"sshhosts{random.Random().randrange(10**6)}"
    tags = labels(run_id, owner_here())
    taken = docker_networks(client) + host_networks()
    subnet = free_subnets(POOL, taken)[0]
    gateway, *free = [str(a) for a in ipaddress.IPv4Network(subnet).hosts()]
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=str(subnet), gateway=gateway)])
    network = client.networks.create(f"splitbrain-{run_id}", driver="bridge", internal=True,
                                     ipam=ipam, labels=tags)  # fmt: skip
    key = asyncssh.generate_private_key("ssh-ed25519")
    identity = workdir / "id_ed25519"
    key.write_private_key(str(identity))
    identity.chmod(0o600)
    public = key.export_public_key().decode().strip()
    hosts = SshHosts(client, run_id, network, [], free[:count], identity,
                     workdir / "known_hosts", public)
    try:
        for i, address in enumerate(hosts.addresses, 1):
            networking = client.api.create_networking_config(
                {network.name: client.api.create_endpoint_config(ipv4_address=address)})
            config = client.api.create_host_config(init=True, cap_add=["NET_ADMIN"],
                                                   network_mode=network.name)  # fmt: skip
            created = client.api.create_container(
                image, command=["sh", "-c", SSHD], name=f"splitbrain-{run_id}-h{i}",
                hostname=f"h{i}", labels=tags, host_config=config,
                networking_config=networking, detach=True)  # fmt: skip
            container = client.containers.get(created["Id"])
            hosts.containers.append(container)
            container.start()
        users = (
            "for u in deploy plain; do useradd -m -s /bin/sh $u; done; "
            "echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy; "
            "for h in /root /home/deploy /home/plain; do mkdir -p $h/.ssh; "
            f"echo '{public}' > $h/.ssh/authorized_keys; chmod 700 $h/.ssh; "
            "chmod 600 $h/.ssh/authorized_keys; chown -R $(stat -c %u:%g $h) $h/.ssh; done; "
            f"mkdir -p /var/lib/splitbrain && ln -s /var/lib/splitbrain {LINKED_ROOT}"
        )
        lines = []
        for i, address in enumerate(hosts.addresses):
            code, out = hosts.exec(i, users)
            assert code == 0, out
            deadline = time.monotonic() + 30
            while True:
                code, out = hosts.exec(i, "cat /etc/ssh/ssh_host_ed25519_key.pub && "
                                          "test -S /proc/1/fd/0 -o -e /run/sshd.pid")  # fmt: skip
                if code == 0:
                    break
                assert time.monotonic() < deadline, f"sshd never started on {address}: {out}"
                time.sleep(0.1)
            lines.append(f"{address} {' '.join(out.split()[:2])}")
        hosts.known_hosts.write_text("\n".join(lines) + "\n")
    except BaseException:
        hosts.remove()
        raise
    return hosts
