"""Clock faults for systems that read the time through libc: libfaketime in each node.

Containers share the host's clock, so setting a node's clock (`date -s`) would set the
host's: never. Instead each node's server runs with libfaketime (`LD_PRELOAD`), which
reads a time offset from a file this nemesis rewrites: `bump` moves a node's wall clock
by an offset, `skew` makes it run fast or slow, `strobe` flips it between an offset and
the true time every second for a while. Only the wall clock is faked
(`FAKETIME_DONT_FAKE_MONOTONIC=1`), as a real clock change leaves CLOCK_MONOTONIC
alone. Healing writes `+0` everywhere.

libfaketime reaches programs that ask libc for the time. etcd is written in Go, which
reads the clock without libc, so clock faults are refused for it (and for any system
whose `libc_clock` is false) before the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.generator import Context
from harness.ops import Completion, Invocation
from harness.system import Cluster, NodeSpec
from nemesis.core import TARGETS, FaultRefused, pick, run_in_nodes

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
TIME_FILE = "/tmp/splitbrain-faketime"
KINDS = ("bump", "skew", "strobe")
STROBE_PERIOD_S = 1.0  # libfaketime re-reads its file at most once a second


def environment() -> dict[str, str]:
    """What a node's server runs with, so that this nemesis can move its clock."""
    return {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME_TIMESTAMP_FILE": TIME_FILE,
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def spec_for(kind: str, ms: float) -> str:
    """libfaketime's relative form: an offset in seconds, or a rate for skew."""
    if kind == "skew":
        return f"+0 x{1 + ms / 1000:.3f}"  # ms: how far it runs ahead per second
    return f"{ms / 1000:+.3f}"


@dataclass
class Clock:
    """`clock` (value: {kind, ms, target}) and `reset-clock`."""

    kinds: Sequence[str] = ("bump", "strobe")
    ms: Sequence[float] = (-5000.0, 5000.0, 60_000.0)
    targets: Sequence[str] = ("leader", "random", "all")
    strobe_s: float = 4.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    name: str = "clock"
    heal_rank: int = 1
    fs: frozenset[str] = frozenset({"clock", "reset-clock"})
    _moved: set[str] = field(default_factory=set)
    _strobes: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in KINDS:
                raise ValueError(f"clock: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        for target in self.targets:
            if target not in TARGETS:
                raise ValueError(f"clock: unknown target {target!r}; use one of {TARGETS}")

    async def prepare(self, cluster: Cluster) -> None:
        if not cluster.system.libc_clock:
            raise FaultRefused(
                f"clock faults move a node's clock through libfaketime, which "
                f"{cluster.system.name} does not see: it reads the clock without libc (as Go "
                "does); and the nodes share the host's clock, which is never set"
            )
        await self._write(cluster, cluster.nodes, "+0")

    def fault(self, ctx: Context) -> Invocation:
        return Invocation("clock", {
            "kind": ctx.rng.choice(list(self.kinds)),
            "ms": ctx.rng.choice(list(self.ms)),
            "target": ctx.rng.choice(list(self.targets)),
        })  # fmt: skip

    def recover(self) -> Invocation:
        return Invocation("reset-clock")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "clock":
            kind, ms, target = op.value["kind"], float(op.value["ms"]), op.value["target"]
            leader = await cluster.system.leader(cluster.nodes)
            names = pick(target, [n.name for n in cluster.nodes], leader, self.rng)
            chosen = [n for n in cluster.nodes if n.name in names]
            if kind == "strobe":
                task = asyncio.ensure_future(self._strobe(cluster, chosen, ms))
                self._strobes.add(task)
                task.add_done_callback(self._strobes.discard)
            else:
                await self._write(cluster, chosen, spec_for(kind, ms))
            self._moved.update(names)
            return Completion("info", {**op.value, "nodes": names, "leader": leader})
        if op.f == "reset-clock":
            return Completion("info", await self.heal(cluster))
        return Completion("fail", error=f"the clock nemesis does not do {op.f!r}")

    async def _strobe(self, cluster: Cluster, nodes: list[NodeSpec], ms: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.strobe_s
        flip = False
        while loop.time() < end:
            flip = not flip
            await self._write(cluster, nodes, spec_for("bump", ms) if flip else "+0")
            await asyncio.sleep(STROBE_PERIOD_S)
        await self._write(cluster, nodes, "+0")

    async def _write(self, cluster: Cluster, nodes: Sequence[NodeSpec], spec: str) -> None:
        script = f"echo {shlex.quote(spec)} > {TIME_FILE}.new && mv {TIME_FILE}.new {TIME_FILE}"
        await run_in_nodes(cluster, script, "set a node's clock", nodes)

    async def heal(self, cluster: Cluster) -> Any:
        for task in list(self._strobes):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        reset = sorted(self._moved)
        await self._write(cluster, cluster.nodes, "+0")
        self._moved.clear()
        return reset

    def in_force(self) -> list[str]:
        return [f"{n} clock moved" for n in sorted(self._moved)]
