"""Redis as a splitbrain system: one primary and its replicas, from Debian's redis-server.

The nodes run an image made of Debian's essential set and `redis-server` alone (no
Python, no iptables, nothing of splitbrain's): every fault comes from outside the image
(docs/nemesis.md). `n1` is the primary; every other node starts as its replica
(`--replicaof`). Writes and compare-and-sets go to the primary; reads go to the primary
(`reads: primary`) or to the node the client is attached to (`reads: replicas`), where
a replica answers from its own copy, which lags behind the primary, and more so under
partitions or delays: not linearizable. Name it in a spec as
`system: examples.redis.system:Redis` (docs/testing-your-system.md, second walk-through).

A team that ships its own Redis-speaking image sets `image` to
`NodeImage.local("team/redis:7")` (or a directory with a Dockerfile) and keeps the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis.asyncio
import redis.exceptions

from checker.history import UNOBSERVED
from harness.client import Client, Node
from harness.ops import Completion, Invocation
from harness.system import NodeImage, NodeSpec

PORT = 6379
Reads = Literal["primary", "replicas"]
READS: tuple[Reads, ...] = ("primary", "replicas")
REDIS_IMAGE = NodeImage.debian("redis-server")
# compare-and-set in one step on the primary: SET KEYS[1] ARGV[2] if it holds ARGV[1]
CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


async def _ask(host: str, timeout: float, *command: str) -> Any:
    """One command on a fresh connection; None on any failure."""
    conn = redis.asyncio.Redis(host=host, port=PORT, socket_timeout=timeout,
                               socket_connect_timeout=timeout)  # fmt: skip
    try:
        return await conn.execute_command(*command)
    except (redis.exceptions.RedisError, OSError):
        return None
    finally:
        await conn.aclose()


@dataclass
class Redis:
    """`reads`: where reads go, `primary` or `replicas` (the node a client is attached to;
    the primary's clients read from it all the same)."""

    name: str = "redis"
    reads: str = "replicas"
    client_timeout: float = 2.0
    libc_clock: bool = True
    image: NodeImage = REDIS_IMAGE  # system_options may name another: `image: team/redis:7`
    data_dir: str = "/var/lib/redis"
    client_port: int = PORT
    peer_port: int = PORT  # replicas reach the primary on its client port
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.image, str):  # from a spec's system_options
            self.image = NodeImage.named(self.image)
        if self.reads not in READS:
            raise ValueError(f"reads: expected one of {', '.join(READS)}, got {self.reads!r}")

    def command(
        self, node: NodeSpec, members: Sequence[NodeSpec], token: str, new: bool
    ) -> list[str]:
        argv = [
            "redis-server", "--port", str(PORT), "--bind", "0.0.0.0", "--protected-mode", "no",
            "--dir", node.data_dir, "--appendonly", "yes", "--save", "",
        ]  # fmt: skip
        primary = members[0]
        if node.name != primary.name:
            argv += ["--replicaof", primary.host, str(PORT)]
        return argv

    async def leader(self, nodes: Sequence[NodeSpec], timeout: float = 1.0) -> str | None:
        """The primary, when it says so and every replica that answers follows it."""
        roles = await asyncio.gather(*(_ask(n.host, timeout, "ROLE") for n in nodes))
        primary = [n for n, r in zip(nodes, roles, strict=True) if r and r[0] == b"master"]
        if len(primary) != 1:
            return None
        followed = {r[1].decode() for r in roles if r and r[0] == b"slave"}
        return primary[0].name if followed <= {primary[0].host} else None

    async def healthy(self, node: NodeSpec, timeout: float = 1.0) -> bool:
        return await _ask(node.host, timeout, "PING") is True

    async def version(self, node: NodeSpec, timeout: float = 1.0) -> str | None:
        info = await _ask(node.host, timeout, "INFO", "server")
        return str(info.get("redis_version")) if isinstance(info, dict) else None

    def client(self, options: Mapping[str, Any]) -> Client:
        reads: Reads = "primary" if self.reads == "primary" else "replicas"
        return RedisClient(timeout=float(options.get("timeout", self.client_timeout)),
                           reads=reads)  # fmt: skip


@dataclass
class RedisClient:
    """Register operations: read (GET), write (SET) and cas (a Lua script), on keys
    `splitbrain:KEY`. Writes and cas go to the primary, which the attached node names
    (ROLE); reads as `reads` says. Final reads always go to the primary."""

    timeout: float = 2.0
    reads: Reads = "replicas"
    _node: Node | None = None
    _here: redis.asyncio.Redis | None = None
    _primary: redis.asyncio.Redis | None = None

    def _connect(self, host: str) -> redis.asyncio.Redis:
        return redis.asyncio.Redis(host=host, port=PORT, socket_timeout=self.timeout,
                                   socket_connect_timeout=min(1.0, self.timeout),
                                   single_connection_client=True)  # fmt: skip

    async def open(self, node: Node) -> None:
        self._node = node
        self._here = self._connect(node.host)

    async def _to_primary(self) -> redis.asyncio.Redis:
        if self._primary is None:
            assert self._here is not None and self._node is not None
            role = await self._here.execute_command("ROLE")
            if role[0] == b"master":
                self._primary = self._here
            else:
                self._primary = self._connect(role[1].decode())
        return self._primary

    async def invoke(self, op: Invocation) -> Completion:
        key = f"splitbrain:{op.key}"
        sent = False
        try:
            if op.f == "read":
                conn = self._here if self.reads == "replicas" and not op.final else None
                conn = conn or await self._to_primary()
                found = await conn.get(key)
                return Completion("ok", None if found is None else int(found))
            primary = await self._to_primary()
            await primary.ping()  # connected: what follows may have taken effect
            sent = True
            if op.f == "write":
                await primary.set(key, str(op.value))
                return Completion("ok", op.value)
            if op.f == "cas":
                expected, new = op.value
                done = await primary.eval(CAS, 1, key, str(expected), str(new))
                return Completion("ok" if done == 1 else "fail", op.value)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as e:
            error = f"{type(e).__name__}: {e}"
            if op.f == "read" or not sent:
                return Completion("fail", UNOBSERVED if op.f == "read" else op.value, error)
            return Completion("info", op.value, error)
        return Completion("fail", op.value, f"the Redis client does not do {op.f!r}")

    async def close(self) -> None:
        for conn in {id(c): c for c in (self._here, self._primary) if c is not None}.values():
            await conn.aclose()
        self._here = self._primary = None
