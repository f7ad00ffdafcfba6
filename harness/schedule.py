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

from collections.abc import Sequence

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


def _start(fault: Fault) -> Once:
    return Once(lambda ctx: as_invocation(fault.draw(ctx.rng)))


def _stop(fault: Fault) -> Once:
    return Once(as_invocation(fault.recovery()))


def interval(fault: Fault, fault_s: float, heal_s: float) -> Generator:
    """Healthy for `heal_s`, then a fault for `fault_s`, then recovery; again and again."""
    return Cycle(lambda: Seq([Sleep(heal_s), _start(fault), Sleep(fault_s), _stop(fault)]))


def random_mix(fault: Fault, fault_s: float, heal_s: float) -> Generator:
    """As `interval`, with each duration uniform in [0, 2x]."""

    def spread(mean: float) -> Sleep:
        return Sleep(lambda ctx: ctx.rng.uniform(0, 2 * mean))

    return Cycle(lambda: Seq([spread(heal_s), _start(fault), spread(fault_s), _stop(fault)]))


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
