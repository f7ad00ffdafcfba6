"""Clock faults for systems that read the time through libc, where the image has
libfaketime.

Containers share the host's clock, so setting a node's clock (`date -s`) would set the
host's: never. Instead each node's server runs with libfaketime (`LD_PRELOAD`), which
reads a time offset from a file this nemesis writes into the node (the backend's
`Files` capability: no shell needed in the image): `bump` moves a node's wall clock
by an offset, `skew` makes it run fast or slow, `strobe` flips it between an offset and
the true time every second for a while. Only the wall clock is faked
(`FAKETIME_DONT_FAKE_MONOTONIC=1`), as a real clock change leaves CLOCK_MONOTONIC
alone. Healing writes `+0` everywhere.

libfaketime reaches programs that ask libc for the time. etcd is written in Go, which
reads the clock without libc, so clock faults are refused for it (and for any system
whose `libc_clock` is false) before the run; so they are for an image without
libfaketime at LIBFAKETIME (Debian's `libfaketime` package puts it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cluster.capabilities import Files, Members
from cluster.node import NodeDown, NodeSpec
from nemesis.core import TARGETS, FaultOp, FaultRefused, FaultResult, pick, require, unknown

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
    needs: ClassVar[tuple[type, ...]] = (Files,)
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

    async def setup(self, cluster: Members) -> None:
        if not cluster.system.libc_clock:
            raise FaultRefused(
                f"clock faults move a node's clock through libfaketime, which "
                f"{cluster.system.name} does not see: it reads the clock without libc (as Go "
                "does); and the nodes share the host's clock, which is never set"
            )
        require(cluster, [Files], "clock")
        assert isinstance(cluster, Files)
        first = cluster.nodes[0].name
        if not await asyncio.to_thread(cluster.exists, first, LIBFAKETIME):
            raise FaultRefused(
                f"clock faults need libfaketime in the nodes' image, at {LIBFAKETIME} "
                f"(Debian's libfaketime package); {first} has none, and the nodes share the "
                "host's clock, which is never set"
            )
        await self._write(cluster, cluster.nodes, "+0")

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp("clock", {
            "kind": rng.choice(list(self.kinds)),
            "ms": rng.choice(list(self.ms)),
            "target": rng.choice(list(self.targets)),
        })  # fmt: skip

    def recovery(self) -> FaultOp:
        return FaultOp("reset-clock")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
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
            return FaultResult({**op.value, "nodes": names, "leader": leader})
        if op.f == "reset-clock":
            return FaultResult(await self.teardown(cluster))
        raise unknown(self.name, op)

    async def _strobe(self, cluster: Members, nodes: list[NodeSpec], ms: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.strobe_s
        flip = False
        while loop.time() < end:
            flip = not flip
            await self._write(cluster, nodes, spec_for("bump", ms) if flip else "+0")
            await asyncio.sleep(STROBE_PERIOD_S)
        await self._write(cluster, nodes, "+0")

    async def _write(self, cluster: Members, nodes: Sequence[NodeSpec], spec: str) -> list[str]:
        """The time file in every node of `nodes` that runs; the names of those down."""
        assert isinstance(cluster, Files)
        files: Files = cluster
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "faketime"
            source.write_text(spec + "\n")

            def one(node: NodeSpec) -> str | None:
                try:
                    files.copy_in(node.name, source, TIME_FILE)
                except NodeDown:
                    return node.name
                return None

            found = await asyncio.gather(*(asyncio.to_thread(one, n) for n in nodes))
        return [name for name in found if name is not None]

    async def teardown(self, cluster: Members) -> Any:
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
