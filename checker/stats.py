"""Statistics of a history: what the clients did, how fast, and how available the system
was around each fault.

- operations by f and outcome, throughput (ok operations per second);
- latency quantiles per f, of ok operations, in milliseconds;
- availability: the fraction of completed client operations that were ok;
- faults: each nemesis operation that started a fault, paired with the recovery after
  it, and for each the *unavailability window*: from the fault (its invocation) until
  the first ok completion of an operation invoked after the fault was in force (its
  completion): how long clients could not get anything done,
  and the longest gap between ok completions while it was in force;
- the end state: how many client operations invoked after the last nemesis operation
  (a run's final heal) succeeded; 0 says nothing of the end state was read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from checker.history import NEMESIS, Op, timed_pairs
from checker.quantiles import EXACT_LIMIT, Quantiles

RECOVERIES = frozenset(
    {
        "heal",
        "restart",
        "resume",
        "stop",
        "heal-partition",
        "heal-loss",
        "heal-delay",
        "heal-scenario",
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
    # ok client operations invoked after the last nemesis operation completed; None
    # when the history has no nemesis operation
    ok_after_nemesis: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "duration_s": round(self.duration_s, 3),
            "ok_per_s": round(self.ok_per_s, 1),
            "availability": None if self.availability is None else round(self.availability, 4),
            "latency_ms": self.latency_ms,
            "faults": [f.to_json() for f in self.faults],
            "nemesis": self.nemesis,
            "ok_after_nemesis": self.ok_after_nemesis,
        }


def compute(ops: Iterable[Op], recoveries: frozenset[str] = RECOVERIES,
            exact_limit: int = EXACT_LIMIT) -> Stats:
    """The statistics in one pass over `ops` (a list, or a stream read from a file), in
    memory bounded by the faults and the latency buckets, not by the history's length.
    The history's times are expected to grow with its lines, as recorded. Latency
    quantiles are exact up to `exact_limit` values per f (checker/quantiles.py)."""
    by_f: dict[str, Counter[str]] = defaultdict(Counter)
    latencies: dict[str, Quantiles] = {}
    faults = _Faults(recoveries)
    for timed in timed_pairs(faults.watch(ops)):
        operation = timed.operation
        by_f[operation.f][operation.outcome] += 1
        if operation.outcome == "ok" and operation.completed is not None:
            start, end = timed.invoked_ns / 1e9, (timed.completed_ns or 0) / 1e9
            if operation.f not in latencies:
                latencies[operation.f] = Quantiles(exact_limit)
            latencies[operation.f].add((end - start) * 1000)
            faults.ok(start, end)
    duration = faults.last_s
    completed = sum(sum(c.values()) for c in by_f.values())
    ok = sum(c["ok"] for c in by_f.values())
    return Stats(
        ops={f: dict(c) for f, c in sorted(by_f.items())},
        duration_s=duration,
        ok_per_s=ok / duration if duration else 0.0,
        availability=ok / completed if completed else None,
        latency_ms={f: q.to_json() for f, q in sorted(latencies.items())},
        faults=faults.finish(),
        nemesis=faults.timeline,
        ok_after_nemesis=faults.ok_after_last,
    )


@dataclass
class _Tracked:
    """A nemesis operation in flight or a fault in force: the ok completions since its
    start, for the longest gap between them."""

    start_s: float
    fault: Fault | None = None  # once its completion says it was a fault
    last_mark: float = 0.0
    longest: float = 0.0

    def mark(self, at: float) -> None:
        self.longest = max(self.longest, at - self.last_mark)
        self.last_mark = at


class _Faults:
    """Faults and their unavailability, from the nemesis operations and the ok client
    operations as they stream by. Nemesis operations come in pairs (invocation,
    completion). A fault starts when it is invoked (it takes effect somewhere before its
    completion) and ends when the recovery after it has completed."""

    def __init__(self, recoveries: frozenset[str]) -> None:
        self.recoveries = recoveries
        self.faults: list[Fault] = []
        self.timeline: list[dict[str, Any]] = []
        self.last_s = 0.0
        self._invoked: Op | None = None
        self._nemesis_seen = 0
        self._open: list[_Tracked] = []  # tracking ok completions: not yet ended
        self._waiting: list[Fault] = []  # in force, no ok operation invoked after it yet
        self._tracked: dict[int, _Tracked] = {}  # by id of its fault
        self._last_done_s: float | None = None  # the last nemesis completion
        self.ok_after_last: int | None = None  # ok operations invoked after it

    def watch(self, ops: Iterable[Op]) -> Iterable[Op]:
        for op in ops:
            at = (op.time or 0) / 1e9
            self.last_s = max(self.last_s, at)
            if op.process == NEMESIS:
                self._nemesis(op, at)
            yield op

    def _nemesis(self, op: Op, at: float) -> None:
        self.timeline.append({"time_s": round(at, 3), "f": op.f,
                              "value": op.to_json().get("value")})
        self._nemesis_seen += 1
        if self._nemesis_seen % 2:
            self._invoked = op
            self._open.append(_Tracked(at, last_mark=at))
            return
        invoked, self._invoked = self._invoked, None
        tracked = self._open.pop()
        self._last_done_s, self.ok_after_last = at, 0
        if op.f in self.recoveries:
            for fault in self.faults:
                if fault.end_s is None:
                    fault.end_s = at
                    ended = self._tracked[id(fault)]
                    ended.mark(at)
                    self._open.remove(ended)
            return
        start = (invoked.time or 0) / 1e9 if invoked is not None else at
        fault = Fault(op.f, op.to_json().get("value"), start)
        fault.in_force_s = at
        tracked.fault = fault
        self.faults.append(fault)
        self._tracked[id(fault)] = tracked
        self._open.append(tracked)
        self._waiting.append(fault)

    def ok(self, start: float, end: float) -> None:
        if self._last_done_s is not None and start >= self._last_done_s:
            self.ok_after_last = (self.ok_after_last or 0) + 1
        for tracked in self._open:
            if end >= tracked.start_s:
                tracked.mark(end)
        if self._waiting:
            still = []
            for fault in self._waiting:
                if start >= fault.in_force_s:
                    fault.first_ok_after_s = end - fault.start_s
                else:
                    still.append(fault)
            self._waiting = still

    def finish(self) -> list[Fault]:
        for fault in self.faults:
            tracked = self._tracked[id(fault)]
            if fault.end_s is None:
                tracked.mark(self.last_s)
            fault.longest_ok_gap_s = tracked.longest
        return self.faults
