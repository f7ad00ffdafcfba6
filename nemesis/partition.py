"""Network partitions: who cannot hear whom, enforced with iptables in each node's
network namespace (in Docker from the node's helper container: nothing in the image).

A *grudge* maps each node to the nodes whose packets it drops. Partitions are grudges:

| kind | grudge |
|---|---|
| `isolate` | a random node and the rest cannot hear each other |
| `isolate-leader` | the same, with the leader (found through the system's API) |
| `halves` | a random minority and the majority cannot hear each other |
| `majorities-ring` | on a ring, each node hears its nearest neighbours: each a majority |
| `bridge` | two halves that cannot hear each other, and one node that hears both |
| `one-way` | a random node drops what the others send; they still get its packets |

Each node drops by source address in a chain of its own (`splitbrain-partition`, jumped
to from INPUT), so healing flushes exactly these rules and never the host's: the rules
live in the node's own network namespace, which outlives a restart of the node (a node
killed while partitioned comes back partitioned), and only peers' addresses are dropped
(the host, where the clients are, is always heard). With 5 nodes no two nodes of a
majorities ring see the same majority; 3 nodes cannot be split so. A one-way drop cuts
TCP in both directions, since a connection needs packets both ways; only datagrams stay one-way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cluster.capabilities import Members, Network
from cluster.node import NodeSpec
from nemesis.core import (
    Bag,
    FaultOp,
    FaultResult,
    chain_rules,
    flush,
    require,
    run_in_networks,
    unknown,
)

Grudge = dict[str, frozenset[str]]
CHAIN = "splitbrain-partition"
KINDS = ("isolate", "isolate-leader", "halves", "majorities-ring", "bridge", "one-way")


def complete(a: Sequence[str], b: Sequence[str]) -> Grudge:
    """Every node of `a` and every node of `b` cannot hear each other."""
    grudge = {n: frozenset(b) for n in a}
    grudge.update({n: frozenset(a) for n in b})
    return grudge


def isolate(node: str, nodes: Sequence[str]) -> Grudge:
    return complete([node], [n for n in nodes if n != node])


def halves(nodes: Sequence[str], rng: random.Random) -> Grudge:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    cut = len(shuffled) // 2
    return complete(shuffled[:cut], shuffled[cut:])


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> Grudge:
    ring = list(nodes)
    rng.shuffle(ring)
    n = len(ring)
    reach = (n // 2 + 1) // 2  # neighbours on each side: with itself, a majority
    grudge: Grudge = {}
    for i, node in enumerate(ring):
        near = {ring[(i + d) % n] for d in range(-reach, reach + 1)}
        grudge[node] = frozenset(set(ring) - near)
    return grudge


def bridge(nodes: Sequence[str], rng: random.Random) -> Grudge:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    middle = len(shuffled) // 2
    return complete(shuffled[:middle], shuffled[middle + 1 :])


def one_way(node: str, nodes: Sequence[str]) -> Grudge:
    return {node: frozenset(n for n in nodes if n != node)}


def grudge_for(kind: str, nodes: Sequence[str], leader: str | None, rng: random.Random) -> Grudge:
    if kind == "isolate":
        return isolate(rng.choice(list(nodes)), nodes)
    if kind == "isolate-leader":
        return isolate(leader if leader in nodes else rng.choice(list(nodes)), nodes)
    if kind == "halves":
        return halves(nodes, rng)
    if kind == "majorities-ring":
        return majorities_ring(nodes, rng)
    if kind == "bridge":
        return bridge(nodes, rng)
    if kind == "one-way":
        return one_way(rng.choice(list(nodes)), nodes)
    raise ValueError(f"unknown partition {kind!r}; use one of {', '.join(KINDS)}")


@dataclass
class Partition:
    """`partition` (value: a kind) and `heal-partition`."""

    kinds: Sequence[str] = ("isolate-leader",)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    needs: ClassVar[tuple[type, ...]] = (Network,)
    name: str = "partition"
    heal_rank: int = 2
    fs: frozenset[str] = frozenset({"partition", "heal-partition"})
    _grudge: Grudge = field(default_factory=dict)
    _bag: Bag[str] = field(init=False)

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in KINDS:
                raise ValueError(f"partition: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        self._bag = Bag(self.kinds)

    async def setup(self, cluster: Members) -> None:
        """The chain in every node; refused where nodes have no network of their own."""
        require(cluster, [Network], "partition")
        await run_in_networks(cluster, chain_rules(CHAIN, []), "set up partitions")

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp("partition", self._bag.draw(rng))

    def recovery(self) -> FaultOp:
        return FaultOp("heal-partition")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f == "partition":
            names = [n.name for n in cluster.nodes]
            leader = await cluster.system.leader(cluster.nodes)
            grudge = grudge_for(str(op.value), names, leader, self.rng)
            down = await self._apply(cluster, grudge)
            shown = {n: sorted(g) for n, g in sorted(grudge.items()) if g}
            value = {"kind": op.value, "grudge": shown, "leader": leader}
            if down:
                value["down"] = down  # its network namespace is gone: no rules there
            return FaultResult(value)
        if op.f == "heal-partition":
            return FaultResult(await self.teardown(cluster))
        raise unknown(self.name, op)

    async def _apply(self, cluster: Members, grudge: Grudge) -> list[str]:
        address = {n.name: n.host for n in cluster.nodes}

        def rules(spec: NodeSpec) -> str | None:
            drops = sorted(grudge.get(spec.name, ()))
            if not drops:
                return None
            return chain_rules(CHAIN, [f"-s {address[peer]} -j DROP" for peer in drops])

        down = await run_in_networks(cluster, rules, "partition")
        self._grudge = {n: g for n, g in grudge.items() if g}
        return down

    async def teardown(self, cluster: Members) -> Any:
        healed = sorted(self._grudge)
        await run_in_networks(cluster, flush(CHAIN), "heal the network")
        self._grudge = {}
        return healed

    def in_force(self) -> list[str]:
        return [f"{n} deaf to {','.join(sorted(g))}" for n, g in sorted(self._grudge.items())]
