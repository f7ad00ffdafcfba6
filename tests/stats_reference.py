"""The statistics as they were computed before they streamed (every op held, exact
quantiles by sorting): the oracle the streaming `checker.stats.compute` is compared to."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable

from checker.history import NEMESIS, Op, pair
from checker.set_full import quantiles
from checker.stats import RECOVERIES, Fault, Stats


def exact_stats(ops: Iterable[Op], recoveries: frozenset[str] = RECOVERIES) -> Stats:
    """checker.stats.compute as it was before it streamed: every op in memory."""
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
    dones = nemesis[1::2]  # the completions
    last_done = times[dones[-1].index] if dones else None
    ok_after = None if last_done is None else sum(1 for start, _ in oks if start >= last_done)
    return Stats(
        ops={f: dict(c) for f, c in sorted(by_f.items())},
        duration_s=duration,
        ok_per_s=ok / duration if duration else 0.0,
        availability=ok / completed if completed else None,
        latency_ms={f: quantiles(v) for f, v in sorted(latencies.items())},
        faults=faults,
        nemesis=timeline,
        ok_after_nemesis=ok_after,
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
