"""Faults done to whole nodes, picked by a target: the shape `kill` and `pause` share.

The start operation (value: a target, see nemesis.core.pick) hits the nodes the target
names among those not hit yet; the stop operation undoes it on every node hit. A
family is a subclass that says its names and how to hit and undo one node.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cluster.capabilities import Members
from nemesis.core import TARGETS, Bag, FaultOp, FaultResult, pick, require, unknown


@dataclass
class NodeFault:
    targets: Sequence[str] = ("leader",)  # aimed where bugs hide; spec may add random, ...
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _hit: set[str] = field(default_factory=set)
    _bag: Bag[str] = field(init=False)

    name: ClassVar[str]
    needs: ClassVar[tuple[type, ...]]  # backend capabilities (cluster.capabilities)
    heal_rank: ClassVar[int]
    start_f: ClassVar[str]
    stop_f: ClassVar[str]
    state: ClassVar[str]  # what a hit node is, for the progress line: "killed"

    def __post_init__(self) -> None:
        for target in self.targets:
            if target not in TARGETS:
                raise ValueError(f"{self.name}: unknown target {target!r}; use one of {TARGETS}")
        self._bag = Bag(self.targets)

    @property
    def fs(self) -> frozenset[str]:
        return frozenset({self.start_f, self.stop_f})

    def hit(self, cluster: Members, name: str) -> None:
        raise NotImplementedError

    def undo(self, cluster: Members, name: str) -> None:
        raise NotImplementedError

    async def setup(self, cluster: Members) -> None:
        require(cluster, self.needs, self.name)

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp(self.start_f, self._bag.draw(rng))

    def recovery(self) -> FaultOp:
        return FaultOp(self.stop_f)

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f == self.start_f:
            names = [n.name for n in cluster.nodes if n.name not in self._hit]
            if not names:
                return FaultResult({"target": op.value, "nodes": []}, f"every node {self.state}")
            leader = await cluster.system.leader(cluster.nodes)
            chosen = pick(str(op.value), names, leader, self.rng)
            outcomes = await asyncio.gather(
                *(asyncio.to_thread(self.hit, cluster, n) for n in chosen), return_exceptions=True
            )
            # The nodes hit are healed later even when others failed: remember them first.
            hit = [n for n, o in zip(chosen, outcomes, strict=True) if o is None]
            self._hit.update(hit)
            value = {"target": op.value, "nodes": hit, "leader": leader}
            failed = [f"{n}: {type(o).__name__}: {o}"
                      for n, o in zip(chosen, outcomes, strict=True) if o is not None]
            return FaultResult(value, "; ".join(failed) if failed else None)
        if op.f == self.stop_f:
            return FaultResult({"nodes": await self.teardown(cluster)})
        raise unknown(self.name, op)

    async def teardown(self, cluster: Members) -> Any:
        hit = sorted(self._hit)
        await asyncio.gather(*(asyncio.to_thread(self.undo, cluster, n) for n in hit))
        self._hit.clear()
        return hit

    def in_force(self) -> list[str]:
        return [f"{n} {self.state}" for n in sorted(self._hit)]
