"""Packet faults between nodes: random loss, with iptables inside each node.

`loss` drops each packet a node receives from a peer with a probability (iptables'
`statistic` match, in a chain of its own jumped to from INPUT), so between two nodes
both directions lose packets. Traffic from the host (the clients) is left alone, as
for partitions. `delay` (with jitter, so packets are also reordered) uses netem where
the kernel has it and an NFQUEUE delayer inside each node where it does not.
Duplication needs netem; it is not offered.
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


DELAY_CHAIN = "splitbrain-delay"
QUEUE = 0
PIDFILE = "/tmp/splitbrain-delayer.pid"
LOG = "/tmp/splitbrain-delayer.log"
# (not pkill -f: the shell running this script has the pattern in its own command line)
STOP_DELAYER = f"(kill $(cat {PIDFILE}) 2>/dev/null; rm -f {PIDFILE}; true)"


async def probe(cluster: Cluster, script: str) -> bool:
    code, _ = await asyncio.to_thread(cluster.exec, cluster.nodes[0].name, ["sh", "-c", script])
    return code == 0


@dataclass
class Delay:
    """`delay` (value: {ms, jitter_ms}) and `heal-delay`: packets between nodes held for
    `delay_ms` ± `jitter_ms` (normal), which also reorders them.

    With netem (`tc qdisc ... netem delay`) where the kernel has it, on each node's
    interface. Otherwise with the NFQUEUE delayer (nemesis/delayer.py) in each node:
    iptables queues the packets from peers to it, and it accepts each one late. Refused
    before the run when the nodes have neither.
    """

    delay_ms: float = 100.0
    jitter_ms: float = 20.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    name: str = "delay"
    heal_rank: int = 2
    fs: frozenset[str] = frozenset({"delay", "heal-delay"})
    mode: str | None = None  # "netem" or "nfqueue", found by prepare
    _in_force: dict[str, float] | None = None

    async def prepare(self, cluster: Cluster) -> None:
        try:
            netem = await probe(cluster, "tc qdisc add dev lo root netem delay 1ms && "
                                         "tc qdisc del dev lo root")  # fmt: skip
            nfqueue = await probe(cluster, f"{cluster.nodes[0].python} -c 'import netfilterqueue'")
        except NotImplementedError as e:
            raise FaultRefused(f"delay: {e}") from None
        if netem:
            self.mode = "netem"
        elif nfqueue:
            self.mode = "nfqueue"
            await run_in_nodes(cluster, chain_rules(DELAY_CHAIN, []), "set up delays")
        else:
            raise FaultRefused(
                "delay needs the kernel's netem queueing discipline (sch_netem: `tc qdisc add "
                "... netem` says 'Specified qdisc kind is unknown') or NFQUEUE with the "
                "netfilterqueue module in the node image; the nodes have neither"
            )

    def fault(self, ctx: Context) -> Invocation:
        return Invocation("delay", {"ms": self.delay_ms, "jitter_ms": self.jitter_ms})

    def recover(self) -> Invocation:
        return Invocation("heal-delay")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "delay":
            ms, jitter = float(op.value["ms"]), float(op.value["jitter_ms"])
            if self.mode == "netem":
                script = f"tc qdisc replace dev eth0 root netem delay {ms}ms {jitter}ms"
                down = await run_in_nodes(cluster, script, "delay packets")
            else:
                seed = self.rng.randrange(2**31)

                def start(spec: NodeSpec) -> str:
                    rules = chain_rules(DELAY_CHAIN, [
                        f"-s {peer.host} -j NFQUEUE --queue-num {QUEUE} --queue-bypass"
                        for peer in cluster.nodes
                        if peer.name != spec.name
                    ])  # fmt: skip
                    delayer = (
                        f"nohup {spec.python} -m nemesis.delayer --queue {QUEUE} "
                        f"--delay-ms {ms} --jitter-ms {jitter} --seed {seed} "
                        f"> {LOG} 2>&1 & echo $! > {PIDFILE}"
                    )
                    # Rules only once it listens: until then the queue would let all pass.
                    bound = (
                        f"for i in $(seq 200); do grep -q listening {LOG} && break; "
                        f"sleep 0.05; done; grep -q listening {LOG} || (cat {LOG}; exit 1)"
                    )
                    return f"{STOP_DELAYER}; {delayer}; {bound} && {rules}"

                down = await run_in_nodes(cluster, start, "delay packets")
            self._in_force = {"ms": ms, "jitter_ms": jitter}
            return Completion("info", {**op.value, "mode": self.mode, "down": down})
        if op.f == "heal-delay":
            return Completion("info", await self.heal(cluster))
        return Completion("fail", error=f"the delay nemesis does not do {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        was = self._in_force
        if self.mode == "netem":
            await run_in_nodes(cluster, "tc qdisc del dev eth0 root 2>/dev/null || true", "heal")
        elif self.mode == "nfqueue":
            script = f"{flush(DELAY_CHAIN)}; {STOP_DELAYER}"
            await run_in_nodes(cluster, script, "heal delays")
        self._in_force = None
        return was

    def in_force(self) -> list[str]:
        if self._in_force is None:
            return []
        return [f"packets delayed {self._in_force['ms']:g}±{self._in_force['jitter_ms']:g} ms"]
