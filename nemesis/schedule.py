"""When faults start and end: schedules as generators for the nemesis worker.

- `interval`: healthy for `heal` seconds, a fault for `fault` seconds, recovery; again.
- `random`: the same with each duration drawn uniformly from [0, 2x] (the same mean),
  and each fault a random one of those configured, all from the run's seed.
- `list`: the spec's own steps, each an operation at a time (seconds from the start),
  in time order (a step before the one above it is refused).

Every schedule's faults come from `nemesis.fault(ctx)` (a random one of the configured
families and targets, from the seeded random source) and its recoveries from
`nemesis.recover()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
from nemesis.core import Nemesis


@dataclass(frozen=True)
class Step:
    at: float  # seconds from the start of the main phase
    f: str
    value: Any = None


def interval(nemesis: Nemesis, fault_s: float, heal_s: float) -> Generator:
    """Healthy for `heal_s`, then a fault for `fault_s`, then recovery; again and again."""
    return Cycle(
        lambda: Seq([Sleep(heal_s), Once(nemesis.fault), Sleep(fault_s), Once(nemesis.recover())])
    )


def random_mix(nemesis: Nemesis, fault_s: float, heal_s: float) -> Generator:
    """As `interval`, with each duration uniform in [0, 2x]."""

    def spread(mean: float) -> Sleep:
        return Sleep(lambda ctx: ctx.rng.uniform(0, 2 * mean))

    return Cycle(
        lambda: Seq([spread(heal_s), Once(nemesis.fault), spread(fault_s), Once(nemesis.recover())])
    )


class Steps(Base):
    """Each step's operation at its time, counted from the first time it is asked."""

    def __init__(self, plan: Sequence[Step]) -> None:
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


def steps(nemesis: Nemesis, plan: Sequence[Step]) -> Generator:
    """The spec's steps, in the order given; an f the nemesis does not handle, or a step
    earlier than the one before it, is refused (never silently reordered)."""
    for i, step in enumerate(plan):
        if i and step.at < plan[i - 1].at:
            raise ValueError(
                f"schedule step {i} at {step.at:g} s comes before step {i - 1} at "
                f"{plan[i - 1].at:g} s; list the steps in time order"
            )
        if step.f not in nemesis.fs:
            raise ValueError(
                f"schedule step at {step.at:g} s: the nemesis does not do {step.f!r}; it does "
                f"{', '.join(sorted(nemesis.fs))}"
            )
    return Steps(plan)


def schedule_for(nemesis: Nemesis, spec: Any) -> Generator:
    """The generator a spec's `nemesis.schedule` describes (harness.spec.ScheduleSpec)."""
    if spec.kind == "interval":
        return interval(nemesis, spec.fault, spec.heal)
    if spec.kind == "random":
        return random_mix(nemesis, spec.fault, spec.heal)
    return steps(nemesis, [Step(s.at, s.f, s.value) for s in spec.steps])
