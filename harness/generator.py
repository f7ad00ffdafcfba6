"""Generators: which operation each worker does next, and when (Jepsen's `jepsen.generator`).

A generator is asked by one worker at a time for its next operation and answers with an
`Invocation`, a `Pending` (nothing yet: ask again at a time, or after the next event),
or None (nothing more for this worker, ever). It hears every completion through
`update`. Workers are the client slots 0..c-1 and the nemesis; each slot's *process*
changes when an operation ends `info` (the interpreter replaces it, as Jepsen does).

Generators compose: `Mix` (weights), `Limit`, `TimeLimit`, `Stagger` (a global rate),
`Seq`, `Cycle`, `Sleep`, `Once`, `Clients`/`Nemesis` (route by worker), `Both`,
`Phases` (one after another, each waiting for the previous one's operations to end),
`Await` (wait for an async condition, bounded) and `PerKey` (groups of workers on
independent keys, a fresh key after a number of operations: jepsen.independent).

Generators here are stateful objects, and the interpreter (harness.interpreter) asks
them from one asyncio loop, so no locking is needed. Randomness comes only from
`ctx.rng`, seeded by the run.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.ops import Completion, Invocation

NEMESIS_SLOT = "nemesis"


@dataclass(slots=True)
class Worker:
    """A client slot (0..c-1) or the nemesis, and the process it runs now."""

    slot: int | str
    process: int | str

    @property
    def is_nemesis(self) -> bool:
        return self.slot == NEMESIS_SLOT


@dataclass(frozen=True, slots=True)
class Pending:
    """Nothing to do yet: ask again at `until` (seconds since the start), or after the
    next completion when None."""

    until: float | None = None


@dataclass
class Context:
    """What a generator may look at: the time, the seeded random source, the workers."""

    rng: random.Random
    workers: list[Worker]
    time: float = 0.0  # seconds since the run's start
    in_flight: int = 0  # operations invoked and not completed
    spawn: Callable[[Awaitable[Any]], asyncio.Future[Any]] = asyncio.ensure_future
    wake: Callable[[], None] = lambda: None  # tell pending workers to ask again


Next = Invocation | Pending | None


class Generator(Protocol):
    def op(self, ctx: Context, worker: Worker) -> Next: ...

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None: ...


class Base:
    """Default `update`: nothing to learn."""

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        return None


def soonest(a: Pending, b: Pending) -> Pending:
    if a.until is None:
        return b
    if b.until is None:
        return a
    return a if a.until <= b.until else b


class Fn(Base):
    """Endless operations from a function of the context (and the worker)."""

    def __init__(self, fn: Callable[[Context, Worker], Invocation]) -> None:
        self.fn = fn

    def op(self, ctx: Context, worker: Worker) -> Next:
        return self.fn(ctx, worker)


class Once(Base):
    """One operation (or one made from the context when asked), to whichever worker asks
    first."""

    def __init__(self, op: Invocation | Callable[[Context], Invocation]) -> None:
        self._op: Invocation | Callable[[Context], Invocation] | None = op

    def op(self, ctx: Context, worker: Worker) -> Next:
        op, self._op = self._op, None
        return op(ctx) if callable(op) else op


class Sleep(Base):
    """Nothing for `seconds` (or `seconds(ctx)`, drawn when first asked) from the first
    time it is asked, then exhausted."""

    def __init__(self, seconds: float | Callable[[Context], float]) -> None:
        self.seconds = seconds
        self._until: float | None = None

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self._until is None:
            seconds = self.seconds(ctx) if callable(self.seconds) else self.seconds
            self._until = ctx.time + seconds
        return Pending(self._until) if ctx.time < self._until else None


class Seq(Base):
    """Each generator until it is exhausted, then the next (no waiting in between)."""

    def __init__(self, gens: Sequence[Generator]) -> None:
        self.gens = list(gens)

    def op(self, ctx: Context, worker: Worker) -> Next:
        while self.gens:
            found = self.gens[0].op(ctx, worker)
            if found is not None:
                return found
            self.gens.pop(0)
        return None

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        if self.gens:
            self.gens[0].update(ctx, worker, op, done)


class Cycle(Base):
    """A fresh generator from `make` each time the previous one is exhausted."""

    def __init__(self, make: Callable[[], Generator]) -> None:
        self.make = make
        self._gen = make()

    def op(self, ctx: Context, worker: Worker) -> Next:
        found = self._gen.op(ctx, worker)
        if found is None:
            self._gen = self.make()
            found = self._gen.op(ctx, worker)
        return found

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        self._gen.update(ctx, worker, op, done)


class Mix(Base):
    """A random choice among generators by weight, for every operation."""

    def __init__(self, weighted: Sequence[tuple[float, Generator]]) -> None:
        self.weighted = [(w, g) for w, g in weighted if w > 0]
        if not self.weighted:
            raise ValueError("Mix needs at least one generator with a positive weight")

    def op(self, ctx: Context, worker: Worker) -> Next:
        live = list(self.weighted)
        waiting: Pending | None = None
        while live:
            weights = [w for w, _ in live]
            pick = ctx.rng.choices(range(len(live)), weights)[0]
            found = live[pick][1].op(ctx, worker)
            if isinstance(found, Invocation):
                return found
            if isinstance(found, Pending):
                waiting = found if waiting is None else soonest(waiting, found)
            live.pop(pick)
        return waiting

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        for _, gen in self.weighted:
            gen.update(ctx, worker, op, done)


class Limit(Base):
    """At most `n` operations from `gen`."""

    def __init__(self, n: int, gen: Generator) -> None:
        self.left = n
        self.gen = gen

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self.left <= 0:
            return None
        found = self.gen.op(ctx, worker)
        if isinstance(found, Invocation):
            self.left -= 1
        return found

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        self.gen.update(ctx, worker, op, done)


class TimeLimit(Base):
    """`gen` until `seconds` after the first time it is asked."""

    def __init__(self, seconds: float, gen: Generator) -> None:
        self.seconds = seconds
        self.gen = gen
        self.deadline: float | None = None

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self.deadline is None:
            self.deadline = ctx.time + self.seconds
        if ctx.time >= self.deadline:
            return None
        found = self.gen.op(ctx, worker)
        if isinstance(found, Pending):
            return soonest(found, Pending(self.deadline))
        return found

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        self.gen.update(ctx, worker, op, done)


class Stagger(Base):
    """`gen`'s operations at random intervals averaging `period` seconds, across all
    workers together (a global rate of 1/period operations per second)."""

    def __init__(self, period: float, gen: Generator) -> None:
        self.period = period
        self.gen = gen
        self._next: float | None = None

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self._next is None:
            self._next = ctx.time
        if ctx.time < self._next:
            return Pending(self._next)
        found = self.gen.op(ctx, worker)
        if isinstance(found, Invocation):
            self._next = max(self._next, ctx.time - self.period) + ctx.rng.uniform(
                0, 2 * self.period
            )
        return found

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        self.gen.update(ctx, worker, op, done)


class Route(Base):
    """`gen` for the workers `accept` admits; None (nothing) for the others."""

    def __init__(self, accept: Callable[[Worker], bool], gen: Generator) -> None:
        self.accept = accept
        self.gen = gen

    def op(self, ctx: Context, worker: Worker) -> Next:
        return self.gen.op(ctx, worker) if self.accept(worker) else None

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        if self.accept(worker):
            self.gen.update(ctx, worker, op, done)


def Clients(gen: Generator) -> Route:
    return Route(lambda w: not w.is_nemesis, gen)


def Nemesis(gen: Generator) -> Route:
    return Route(lambda w: w.is_nemesis, gen)


class Both(Base):
    """Several generators at once; a worker gets the first operation any of them has."""

    def __init__(self, gens: Sequence[Generator]) -> None:
        self.gens = list(gens)

    def op(self, ctx: Context, worker: Worker) -> Next:
        waiting: Pending | None = None
        for gen in self.gens:
            found = gen.op(ctx, worker)
            if isinstance(found, Invocation):
                return found
            if isinstance(found, Pending):
                waiting = found if waiting is None else soonest(waiting, found)
        return waiting

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        for gen in self.gens:
            gen.update(ctx, worker, op, done)


class Phases(Base):
    """Each generator in turn; the next starts when the previous one has nothing more for
    any worker and every operation it started has completed (Jepsen's `phases`)."""

    def __init__(self, gens: Sequence[Generator]) -> None:
        self.gens = list(gens)
        self._done: set[int | str] = set()  # slots the current phase has no more for

    def op(self, ctx: Context, worker: Worker) -> Next:
        while self.gens:
            found = self.gens[0].op(ctx, worker)
            if found is not None:
                return found
            self._done.add(worker.slot)
            if len(self._done) < len(ctx.workers) or ctx.in_flight > 0:
                return Pending()
            self.gens.pop(0)
            self._done.clear()
            ctx.wake()
        return None

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        if self.gens:
            self.gens[0].update(ctx, worker, op, done)


class Await(Base):
    """Nothing until `condition()` (a coroutine) returns or `timeout` passes; then exhausted.

    `outcome` holds what the condition returned, or the exception it raised.
    """

    def __init__(self, condition: Callable[[], Awaitable[Any]], timeout: float) -> None:
        self.condition = condition
        self.timeout = timeout
        self._task: asyncio.Future[Any] | None = None
        self.outcome: Any = None

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self._task is None:

            async def bounded() -> Any:
                try:
                    async with asyncio.timeout(self.timeout):
                        self.outcome = await self.condition()
                except Exception as e:
                    self.outcome = e
                finally:
                    ctx.wake()

            self._task = ctx.spawn(bounded())
        return None if self._task.done() else Pending()


@dataclass
class PerKey(Base):
    """Workers in groups of `group_size` slots, each group on its own key; a key gets the
    operations of `make(key)` (usually a Limit), then the group moves to a fresh key.

    Every key handed out is in `keys`, in order, for the final reads.
    """

    group_size: int
    make: Callable[[Any], Generator]
    name: Callable[[int], Any] = lambda i: f"r{i}"
    keys: list[Any] = field(default_factory=list)
    _groups: dict[int, tuple[Any, Generator]] = field(default_factory=dict)

    def _fresh(self, group: int) -> tuple[Any, Generator]:
        key = self.name(len(self.keys))
        self.keys.append(key)
        self._groups[group] = (key, self.make(key))
        return self._groups[group]

    def op(self, ctx: Context, worker: Worker) -> Next:
        assert isinstance(worker.slot, int), "PerKey serves client workers"
        group = worker.slot // self.group_size
        key, gen = self._groups.get(group) or self._fresh(group)
        found = gen.op(ctx, worker)
        if found is None:
            key, gen = self._fresh(group)
            found = gen.op(ctx, worker)
        if isinstance(found, Invocation) and found.key is None:
            found = Invocation(found.f, found.value, key, found.final)
        return found

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        for key, gen in self._groups.values():
            if key == op.key:
                gen.update(ctx, worker, op, done)


def lanes_for(nodes: int, workers: int) -> int:
    """`EachOnce`'s lanes to read through each of `nodes`: one per node, but no more than
    there are workers to serve them."""
    return max(1, min(nodes, workers))


class EachOnce(Base):
    """One operation per item of a list the workers share out (final reads); an item
    whose operation failed is handed out again, up to `attempts` times in all.

    With `lanes` above 1 each item is done once in every lane, by the workers whose slot
    is the lane modulo `lanes`: the runner binds slot s to node s % nodes, so with one
    lane per node every key is read through every node (Jepsen reads from each node at
    the end). Lanes go in rounds: round r hands item i to lane (i + r) % lanes, so every
    item is done once before any is done twice, and a time limit that cuts the phase
    short leaves out later rounds, not items."""

    def __init__(
        self,
        items: Callable[[], Sequence[Any]],
        make: Callable[[Any], Invocation],
        attempts: int = 5,
        lanes: int = 1,
    ) -> None:
        if lanes < 1:
            raise ValueError(f"lanes: expected at least 1, got {lanes}")
        self.items = items
        self.make = make
        self.attempts = attempts
        self.lanes = lanes
        self._queues: list[deque[Any]] | None = None
        self._tries: dict[tuple[int, Any], int] = {}
        self._busy = [0] * lanes  # operations in flight, per lane

    def _lane(self, worker: Worker) -> int:
        return worker.slot % self.lanes if isinstance(worker.slot, int) else 0

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self._queues is None:
            items, n = list(self.items()), self.lanes
            self._queues = [deque(items[i] for r in range(n) for i in range(len(items))
                                  if (i + r) % n == lane) for lane in range(n)]
        lane = self._lane(worker)
        queue = self._queues[lane]
        if not queue:
            # An operation of this lane still running may fail and come back.
            return Pending(None) if self._busy[lane] else None
        item = queue.popleft()
        self._tries[(lane, item)] = self._tries.get((lane, item), 0) + 1
        self._busy[lane] += 1
        return self.make(item)

    def update(self, ctx: Context, worker: Worker, op: Invocation, done: Completion) -> None:
        if self._queues is None:
            return
        lane = self._lane(worker)
        self._busy[lane] = max(self._busy[lane] - 1, 0)
        if done.type == "ok":
            return
        item = op.key
        if (lane, item) in self._tries and self._tries[(lane, item)] < self.attempts:
            self._queues[lane].append(item)
