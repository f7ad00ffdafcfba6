"""Crashes: SIGKILL the server of some nodes; restart them, on the same data, to recover."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.generator import Context
from harness.ops import Completion, Invocation
from harness.system import Cluster
from nemesis.core import TARGETS, pick


@dataclass
class Kill:
    """`kill` (value: a target, see nemesis.core.pick) and `restart` (every killed node)."""

    targets: Sequence[str] = ("leader", "random")
    signal: str = "SIGKILL"
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    name: str = "kill"
    heal_rank: int = 0
    fs: frozenset[str] = frozenset({"kill", "restart"})
    _down: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for target in self.targets:
            if target not in TARGETS:
                raise ValueError(f"kill: unknown target {target!r}; use one of {TARGETS}")

    async def prepare(self, cluster: Cluster) -> None:
        return None

    def fault(self, ctx: Context) -> Invocation:
        return Invocation("kill", ctx.rng.choice(list(self.targets)))

    def recover(self) -> Invocation:
        return Invocation("restart")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "kill":
            names = [n.name for n in cluster.nodes if n.name not in self._down]
            if not names:
                return Completion("info", {"target": op.value, "nodes": []}, "every node is down")
            leader = await cluster.system.leader(cluster.nodes)
            chosen = pick(str(op.value), names, leader, self.rng)
            await asyncio.gather(*(asyncio.to_thread(cluster.kill, n, self.signal) for n in chosen))
            self._down.update(chosen)
            return Completion("info", {"target": op.value, "nodes": chosen, "leader": leader})
        if op.f == "restart":
            return Completion("info", {"nodes": await self.heal(cluster)})
        return Completion("fail", error=f"the kill nemesis does not do {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        down = sorted(self._down)
        await asyncio.gather(*(asyncio.to_thread(cluster.start, n) for n in down))
        self._down.clear()
        return down

    def in_force(self) -> list[str]:
        return [f"{n} killed" for n in sorted(self._down)]
