"""Pauses: SIGSTOP the server of some nodes; SIGCONT to recover.

A paused node keeps its connections open and its port bound, but answers nothing:
peers and clients wait for it instead of being refused (unlike a crash). It is not a
partition either: the kernel still accepts connections on its open ports.
"""

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
class Pause:
    """`pause` (value: a target, see nemesis.core.pick) and `resume` (every paused node)."""

    targets: Sequence[str] = ("leader", "random")
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    name: str = "pause"
    heal_rank: int = 1
    fs: frozenset[str] = frozenset({"pause", "resume"})
    _paused: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for target in self.targets:
            if target not in TARGETS:
                raise ValueError(f"pause: unknown target {target!r}; use one of {TARGETS}")

    async def prepare(self, cluster: Cluster) -> None:
        return None

    def fault(self, ctx: Context) -> Invocation:
        return Invocation("pause", ctx.rng.choice(list(self.targets)))

    def recover(self) -> Invocation:
        return Invocation("resume")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "pause":
            names = [n.name for n in cluster.nodes if n.name not in self._paused]
            if not names:
                return Completion("info", {"target": op.value, "nodes": []}, "every node is paused")
            leader = await cluster.system.leader(cluster.nodes)
            chosen = pick(str(op.value), names, leader, self.rng)
            await asyncio.gather(*(asyncio.to_thread(cluster.pause, n) for n in chosen))
            self._paused.update(chosen)
            return Completion("info", {"target": op.value, "nodes": chosen, "leader": leader})
        if op.f == "resume":
            return Completion("info", {"nodes": await self.heal(cluster)})
        return Completion("fail", error=f"the pause nemesis does not do {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        paused = sorted(self._paused)
        await asyncio.gather(*(asyncio.to_thread(cluster.resume, n) for n in paused))
        self._paused.clear()
        return paused

    def in_force(self) -> list[str]:
        return [f"{n} paused" for n in sorted(self._paused)]
