"""When faults start and end: the harness's schedules, as generators for the nemesis worker.

- `interval`: healthy for `heal` seconds, a fault for `fault` seconds, recovery; again.
- `random`: the same with each duration drawn uniformly from [0, 2x] (the same mean),
  and each fault a random one of those configured, all from the run's seed.
- `list`: the spec's own steps, each an operation at a time (seconds from the start);
  harness.spec has checked them (time order, operations the faults do).

A fault family (nemesis/) says how to start and end its faults and draws the next one
from the seeded random source (`draw(rng)`, `recovery()`); when is decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.generator import (
    Base,
    Context,
    Cycle,
    Generator,
    Next,
    Once,
    Pending,
    Seq,
    Sleep,
    Worker,
)
from harness.ops import Invocation
from harness.spec import ScheduleSpec, StepSpec
from nemesis.core import Fault, FaultOp


def as_invocation(op: FaultOp) -> Invocation:
    return Invocation(op.f, op.value)


def _stop(fault: Fault) -> Once:
    return Once(as_invocation(fault.recovery()))


class Window(Base):
    """A fault drawn when first asked, its later stages (`Fault.follow_ups`, for composed
    faults) spaced evenly over `seconds`, exhausted when the window ends."""

    def __init__(self, fault: Fault, seconds: float | Callable[[Context], float]) -> None:
        self.fault = fault
        self.seconds = seconds
        self._due: list[tuple[float, FaultOp]] = []
        self._end: float | None = None

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self._end is None:
            length = self.seconds(ctx) if callable(self.seconds) else self.seconds
            first = self.fault.draw(ctx.rng)
            later = self.fault.follow_ups(first)
            step = length / (len(later) + 1)
            self._due = [(ctx.time + step * (i + 1), op) for i, op in enumerate(later)]
            self._end = ctx.time + length
            return as_invocation(first)
        if self._due and ctx.time >= self._due[0][0]:
            return as_invocation(self._due.pop(0)[1])
        if self._due:
            return Pending(self._due[0][0])
        return Pending(self._end) if ctx.time < self._end else None


def interval(fault: Fault, fault_s: float, heal_s: float) -> Generator:
    """Healthy for `heal_s`, then a fault for `fault_s`, then recovery; again and again."""
    return Cycle(lambda: Seq([Sleep(heal_s), Window(fault, fault_s), _stop(fault)]))


def random_mix(fault: Fault, fault_s: float, heal_s: float) -> Generator:
    """As `interval`, with each duration uniform in [0, 2x]."""

    def spread(mean: float) -> Sleep:
        return Sleep(lambda ctx: ctx.rng.uniform(0, 2 * mean))

    def window(ctx: Context) -> float:
        return ctx.rng.uniform(0, 2 * fault_s)

    return Cycle(lambda: Seq([spread(heal_s), Window(fault, window), _stop(fault)]))


class Steps(Base):
    """Each step's operation at its time, counted from the first time it is asked."""

    def __init__(self, plan: Sequence[StepSpec]) -> None:
        self.plan = list(plan)
        self._start: float | None = None

    def op(self, ctx: Context, worker: Worker) -> Next:
        if self._start is None:
            self._start = ctx.time
        if not self.plan:
            return None
        due = self._start + self.plan[0].at
        if ctx.time < due:
            return Pending(due)
        step = self.plan.pop(0)
        return Invocation(step.f, step.value)


def schedule_for(fault: Fault, spec: ScheduleSpec) -> Generator:
    """The generator a spec's `nemesis.schedule` describes."""
    if spec.kind == "interval":
        return interval(fault, spec.fault, spec.heal)
    if spec.kind == "random":
        return random_mix(fault, spec.fault, spec.heal)
    return Steps(spec.steps)


def final_recovery(fault: Fault) -> Generator:
    """The recovery at the end of the main phase."""
    return _stop(fault)
