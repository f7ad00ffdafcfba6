"""Packet faults between nodes: random loss and delay, in each node's network namespace.

`loss` drops each packet a node receives from a peer with a probability (iptables'
`statistic` match, in a chain of its own jumped to from INPUT), so between two nodes
both directions lose packets. Traffic from the host (the clients) is left alone, as
for partitions. `delay` (with jitter, so packets are also reordered) uses netem where
the kernel has it and the NFQUEUE delayer where it does not. Both run through the
backend's `Network` capability (in Docker: the node's helper container), so the node's
image needs neither iptables nor Python. Duplication needs netem; it is not offered.
"""

from __future__ import annotations

import asyncio
import random
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cluster.capabilities import Members, Network
from cluster.node import NodeSpec
from nemesis.core import (
    FaultOp,
    FaultRefused,
    FaultResult,
    chain_rules,
    flush,
    require,
    run_in_networks,
    unknown,
)

LOSS_CHAIN = "splitbrain-loss"


@dataclass
class Loss:
    """`loss` (value: the probability a packet from a peer is dropped) and `heal-loss`."""

    probabilities: Sequence[float] = (0.2,)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    needs: ClassVar[tuple[type, ...]] = (Network,)
    name: str = "loss"
    heal_rank: int = 2
    fs: frozenset[str] = frozenset({"loss", "heal-loss"})
    _in_force: float | None = None

    def __post_init__(self) -> None:
        for p in self.probabilities:
            if not 0 < p <= 1:
                raise ValueError(f"loss: a probability is in (0, 1], got {p!r}")

    async def setup(self, cluster: Members) -> None:
        require(cluster, [Network], "loss")
        await run_in_networks(cluster, chain_rules(LOSS_CHAIN, []), "set up packet loss")

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp("loss", rng.choice(list(self.probabilities)))

    def recovery(self) -> FaultOp:
        return FaultOp("heal-loss")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f == "loss":
            p = float(op.value)

            def rules(spec: NodeSpec) -> str:
                return chain_rules(LOSS_CHAIN, [
                    f"-s {peer.host} -m statistic --mode random --probability {p:.4f} -j DROP"
                    for peer in cluster.nodes
                    if peer.name != spec.name
                ])  # fmt: skip

            down = await run_in_networks(cluster, rules, "drop packets")
            self._in_force = p
            value: dict[str, Any] = {"probability": p, "nodes": [n.name for n in cluster.nodes]}
            if down:
                value["down"] = down
            return FaultResult(value)
        if op.f == "heal-loss":
            return FaultResult(await self.teardown(cluster))
        raise unknown(self.name, op)

    async def teardown(self, cluster: Members) -> Any:
        was = self._in_force
        await run_in_networks(cluster, flush(LOSS_CHAIN), "heal packet loss")
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


async def probe(network: Network, node: str, script: str) -> bool:
    code, _ = await asyncio.to_thread(network.net_exec, node, ["sh", "-c", script])
    return code == 0


@dataclass
class Delay:
    """`delay` (value: {ms, jitter_ms}) and `heal-delay`: packets between nodes held for
    `delay_ms` ± `jitter_ms` (normal), which also reorders them.

    With netem (`tc qdisc ... netem delay`) where the kernel has it, on each node's
    interface. Otherwise with the NFQUEUE delayer (nemesis/delayer.py) in each node's
    network namespace: iptables queues the packets from peers to it, and it accepts
    each one late. Refused before the run when there is neither.
    """

    delay_ms: float = 100.0
    jitter_ms: float = 20.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    needs: ClassVar[tuple[type, ...]] = (Network,)
    name: str = "delay"
    heal_rank: int = 2
    fs: frozenset[str] = frozenset({"delay", "heal-delay"})
    mode: str | None = None  # "netem" or "nfqueue", found by setup
    _in_force: dict[str, float] | None = None

    async def setup(self, cluster: Members) -> None:
        require(cluster, [Network], "delay")
        assert isinstance(cluster, Network)
        first = cluster.nodes[0].name
        delayer = shlex.join(cluster.delayer())
        netem = await probe(cluster, first, "tc qdisc add dev lo root netem delay 1ms && "
                                            "tc qdisc del dev lo root")  # fmt: skip
        nfqueue = await probe(cluster, first, f"{delayer} --help >/dev/null")
        if netem:
            self.mode = "netem"
        elif nfqueue:
            self.mode = "nfqueue"
            await run_in_networks(cluster, chain_rules(DELAY_CHAIN, []), "set up delays")
        else:
            raise FaultRefused(
                "delay needs the kernel's netem queueing discipline (sch_netem: `tc qdisc add "
                "... netem` says 'Specified qdisc kind is unknown') or NFQUEUE with the "
                "delayer beside the nodes; there is neither"
            )

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp("delay", {"ms": self.delay_ms, "jitter_ms": self.jitter_ms})

    def recovery(self) -> FaultOp:
        return FaultOp("heal-delay")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f == "delay":
            ms, jitter = float(op.value["ms"]), float(op.value["jitter_ms"])
            if self.mode == "netem":
                script = f"tc qdisc replace dev eth0 root netem delay {ms}ms {jitter}ms"
                down = await run_in_networks(cluster, script, "delay packets")
            else:
                assert isinstance(cluster, Network)
                seed = self.rng.randrange(2**31)
                program = shlex.join(cluster.delayer())

                def start(spec: NodeSpec) -> str:
                    rules = chain_rules(DELAY_CHAIN, [
                        f"-s {peer.host} -j NFQUEUE --queue-num {QUEUE} --queue-bypass"
                        for peer in cluster.nodes
                        if peer.name != spec.name
                    ])  # fmt: skip
                    delayer = (
                        f"nohup {program} --queue {QUEUE} "
                        f"--delay-ms {ms} --jitter-ms {jitter} --seed {seed} "
                        f"> {LOG} 2>&1 & echo $! > {PIDFILE}"
                    )
                    # Rules only once it listens: until then the queue would let all pass.
                    bound = (
                        f"for i in $(seq 200); do grep -q listening {LOG} && break; "
                        f"sleep 0.05; done; grep -q listening {LOG} || (cat {LOG}; exit 1)"
                    )
                    return f"{STOP_DELAYER}; {delayer}; {bound} && {rules}"

                down = await run_in_networks(cluster, start, "delay packets")
            self._in_force = {"ms": ms, "jitter_ms": jitter}
            return FaultResult({**op.value, "mode": self.mode, "down": down})
        if op.f == "heal-delay":
            return FaultResult(await self.teardown(cluster))
        raise unknown(self.name, op)

    async def teardown(self, cluster: Members) -> Any:
        was = self._in_force
        if self.mode == "netem":
            await run_in_networks(cluster, "tc qdisc del dev eth0 root 2>/dev/null || true",
                                  "heal")  # fmt: skip
        elif self.mode == "nfqueue":
            script = f"{flush(DELAY_CHAIN)}; {STOP_DELAYER}"
            await run_in_networks(cluster, script, "heal delays")
        self._in_force = None
        return was

    def in_force(self) -> list[str]:
        if self._in_force is None:
            return []
        return [f"packets delayed {self._in_force['ms']:g}±{self._in_force['jitter_ms']:g} ms"]
