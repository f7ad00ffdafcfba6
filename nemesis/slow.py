"""Slow nodes: a node starved of CPU that stays up and connected (a noisy neighbour, a
slow VM); let it have the CPU again to recover.

In Docker the node's container gets a CFS quota (`docker update --cpus`), changed while
it runs. A slowed follower acks late and answers clients late, while it stays in the
cluster: docs/nemesis.md has what that did to reads through it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cluster.capabilities import Members, Throttle
from nemesis.core import FaultOp, FaultResult
from nemesis.nodes import NodeFault

MIN_CPUS = 0.01  # the least CFS quota: 1 ms in a 100 ms period


@dataclass
class Slow(NodeFault):
    """`slow` (value: {target, cpus}, or a target alone with the spec's `cpus`) and
    `heal-slow` (every slowed node gets its CPU back)."""

    targets: Sequence[str] = ("follower",)  # where a lagging member answers reads
    cpus: float = 0.05  # measured: reads through it still answer, median 21 ms (docs)
    name = "slow"
    needs = (Throttle,)
    heal_rank = 1
    start_f = "slow"
    stop_f = "heal-slow"
    state = "slowed"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cpus = check_cpus(self.cpus)
        self._now = self.cpus

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp(self.start_f, {"target": self._bag.draw(rng), "cpus": self.cpus})

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f != self.start_f:
            return await super().invoke(cluster, op)
        target, self._now = self.parse(op.value)
        done = await super().invoke(cluster, FaultOp(op.f, target))
        return FaultResult({**done.value, "cpus": self._now}, done.error)

    def parse(self, value: Any) -> tuple[str, float]:
        if isinstance(value, str):
            return value, self.cpus
        if isinstance(value, dict) and isinstance(value.get("target"), str):
            return value["target"], check_cpus(value.get("cpus", self.cpus))
        raise ValueError(f"slow: expected a target or {{target, cpus}}, got {value!r}")

    def hit(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Throttle)
        cluster.throttle(name, self._now)

    def undo(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Throttle)
        cluster.unthrottle(name)


def check_cpus(cpus: Any) -> float:
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not MIN_CPUS <= cpus <= 1:
        raise ValueError(
            f"nemesis.slow.cpus: expected a share of one CPU, {MIN_CPUS} to 1, got {cpus!r}"[:120]
        )
    return float(cpus)
