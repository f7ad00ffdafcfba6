"""Packet faults between nodes: random loss, with iptables inside each node.

`loss` drops each packet a node receives from a peer with a probability (iptables'
`statistic` match, in a chain of its own jumped to from INPUT), so between two nodes
both directions lose packets. Traffic from the host (the clients) is left alone, as
for partitions. Delay, duplication and reordering need netem, which this machine's
kernel lacks (the check in `prepare` says so).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.generator import Context
from harness.ops import Completion, Invocation
from harness.system import Cluster, NodeSpec
from nemesis.core import FaultRefused, chain_rules, flush, run_in_nodes

LOSS_CHAIN = "splitbrain-loss"


@dataclass
class Loss:
    """`loss` (value: the probability a packet from a peer is dropped) and `heal-loss`."""

    probabilities: Sequence[float] = (0.2,)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    name: str = "loss"
    heal_rank: int = 2
    fs: frozenset[str] = frozenset({"loss", "heal-loss"})
    _in_force: float | None = None

    def __post_init__(self) -> None:
        for p in self.probabilities:
            if not 0 < p <= 1:
                raise ValueError(f"loss: a probability is in (0, 1], got {p!r}")

    async def prepare(self, cluster: Cluster) -> None:
        await run_in_nodes(cluster, chain_rules(LOSS_CHAIN, []), "set up packet loss")

    def fault(self, ctx: Context) -> Invocation:
        return Invocation("loss", ctx.rng.choice(list(self.probabilities)))

    def recover(self) -> Invocation:
        return Invocation("heal-loss")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "loss":
            p = float(op.value)

            def rules(spec: NodeSpec) -> str:
                return chain_rules(LOSS_CHAIN, [
                    f"-s {peer.host} -m statistic --mode random --probability {p:.4f} -j DROP"
                    for peer in cluster.nodes
                    if peer.name != spec.name
                ])  # fmt: skip

            await run_in_nodes(cluster, rules, "drop packets")
            self._in_force = p
            return Completion("info", {"probability": p, "nodes": [n.name for n in cluster.nodes]})
        if op.f == "heal-loss":
            return Completion("info", await self.heal(cluster))
        return Completion("fail", error=f"the loss nemesis does not do {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        was = self._in_force
        await run_in_nodes(cluster, flush(LOSS_CHAIN), "heal packet loss")
        self._in_force = None
        return {"probability": was}

    def in_force(self) -> list[str]:
        return [] if self._in_force is None else [f"{self._in_force:.0%} packet loss"]


async def netem_available(cluster: Cluster) -> bool:
    """Whether the nodes' kernel has netem (it is a kernel module this machine may lack)."""
    name = cluster.nodes[0].name
    probe = "tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root"
    code, _ = await asyncio.to_thread(cluster.exec, name, ["sh", "-c", probe])
    return code == 0


@dataclass
class Delay:
    """Delay with jitter: netem where the kernel has it; refused before the run otherwise."""

    delay_ms: float = 100.0
    jitter_ms: float = 20.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    name: str = "delay"
    heal_rank: int = 2
    fs: frozenset[str] = frozenset({"delay", "heal-delay"})
    _in_force: bool = False

    async def prepare(self, cluster: Cluster) -> None:
        try:
            available = await netem_available(cluster)
        except NotImplementedError as e:
            raise FaultRefused(f"delay: {e}") from None
        if not available:
            raise FaultRefused(
                "delay needs the kernel's netem queueing discipline (sch_netem), which this "
                "machine's kernel does not have: `tc qdisc add ... netem` answers "
                "'Specified qdisc kind is unknown'"
            )

    def fault(self, ctx: Context) -> Invocation:
        return Invocation("delay", {"ms": self.delay_ms, "jitter_ms": self.jitter_ms})

    def recover(self) -> Invocation:
        return Invocation("heal-delay")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "delay":
            ms, jitter = float(op.value["ms"]), float(op.value["jitter_ms"])
            script = f"tc qdisc replace dev eth0 root netem delay {ms}ms {jitter}ms"
            await run_in_nodes(cluster, script, "delay packets")
            self._in_force = True
            return Completion("info", op.value)
        if op.f == "heal-delay":
            return Completion("info", await self.heal(cluster))
        return Completion("fail", error=f"the delay nemesis does not do {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        if self._in_force:
            await run_in_nodes(cluster, "tc qdisc del dev eth0 root || true", "heal delays")
        self._in_force = False
        return None

    def in_force(self) -> list[str]:
        return ["packets delayed"] if self._in_force else []
