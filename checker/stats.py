"""Statistics of a history: what the clients did, how fast, and how available the system
was around each fault.

- operations by f and outcome, throughput (ok operations per second);
- latency quantiles per f, of ok operations, in milliseconds;
- availability: the fraction of completed client operations that were ok;
- faults: each nemesis operation that started a fault, paired with the recovery after
  it, and for each the *unavailability window*: from the fault (its invocation) until
  the first ok completion of an operation invoked after the fault was in force (its
  completion): how long clients could not get anything done,
  and the longest gap between ok completions while it was in force.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from checker.history import NEMESIS, Op, pair
from checker.set_full import quantiles

RECOVERIES = frozenset(
    {
        "heal",
        "restart",
        "resume",
        "stop",
        "heal-partition",
        "heal-loss",
        "heal-delay",
        "reset-clock",
    }
)


@dataclass
class Fault:
    f: str
    value: Any
    start_s: float  # when it was asked for
    end_s: float | None = None
    in_force_s: float = 0.0  # when it was done (its completion)
    first_ok_after_s: float | None = None  # None: no ok operation at all afterwards
    longest_ok_gap_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "f": self.f,
            "value": self.value,
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "unavailable_s": None
            if self.first_ok_after_s is None
            else round(self.first_ok_after_s, 3),
            "longest_ok_gap_s": None
            if self.longest_ok_gap_s is None
            else round(self.longest_ok_gap_s, 3),
        }


@dataclass
class Stats:
    ops: dict[str, dict[str, int]]
    duration_s: float
    ok_per_s: float
    availability: float | None
    latency_ms: dict[str, dict[str, float] | None]
    faults: list[Fault] = field(default_factory=list)
    nemesis: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "duration_s": round(self.duration_s, 3),
            "ok_per_s": round(self.ok_per_s, 1),
            "availability": None if self.availability is None else round(self.availability, 4),
            "latency_ms": self.latency_ms,
            "faults": [f.to_json() for f in self.faults],
            "nemesis": self.nemesis,
        }


def compute(ops: Iterable[Op], recoveries: frozenset[str] = RECOVERIES) -> Stats:
    ops = list(ops)
    times = {op.index: (op.time or 0) / 1e9 for op in ops}
    by_f: dict[str, Counter[str]] = defaultdict(Counter)
    latencies: dict[str, list[float]] = defaultdict(list)
    oks: list[tuple[float, float]] = []  # (invoked, completed) of ok client operations
    for operation in pair(ops):
        by_f[operation.f][operation.outcome] += 1
        if operation.outcome == "ok" and operation.completed is not None:
            start, end = times[operation.invoked], times[operation.completed]
            latencies[operation.f].append((end - start) * 1000)
            oks.append((start, end))
    oks.sort(key=lambda span: span[1])
    completed = sum(sum(c.values()) for c in by_f.values())
    ok = sum(c["ok"] for c in by_f.values())
    duration = max(times.values(), default=0.0)
    nemesis = [op for op in ops if op.process == NEMESIS]
    timeline = [
        {"time_s": round(times[op.index], 3), "f": op.f, "value": op.to_json().get("value")}
        for op in nemesis
    ]
    faults = _faults(nemesis, times, recoveries, oks, duration)
    return Stats(
        ops={f: dict(c) for f, c in sorted(by_f.items())},
        duration_s=duration,
        ok_per_s=ok / duration if duration else 0.0,
        availability=ok / completed if completed else None,
        latency_ms={f: quantiles(v) for f, v in sorted(latencies.items())},
        faults=faults,
        nemesis=timeline,
    )


def _faults(
    nemesis: list[Op],
    times: dict[int, float],
    recoveries: frozenset[str],
    oks: list[tuple[float, float]],
    end_of_run: float,
) -> list[Fault]:
    # Nemesis ops come in pairs (invocation, completion). A fault starts when it is
    # invoked (it takes effect somewhere before its completion) and ends when the
    # recovery after it has completed.
    faults: list[Fault] = []
    for invoked, done in zip(nemesis[0::2], nemesis[1::2], strict=False):
        if done.f in recoveries:
            for fault in faults:
                if fault.end_s is None:
                    fault.end_s = times[done.index]
            continue
        fault = Fault(done.f, done.to_json().get("value"), times[invoked.index])
        fault.in_force_s = times[done.index]
        faults.append(fault)
    for fault in faults:
        after = [end for start, end in oks if start >= fault.in_force_s]
        fault.first_ok_after_s = (min(after) - fault.start_s) if after else None
        until = fault.end_s if fault.end_s is not None else end_of_run
        marks = [fault.start_s] + [e for _, e in oks if fault.start_s <= e <= until] + [until]
        fault.longest_ok_gap_s = max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
    return faults
