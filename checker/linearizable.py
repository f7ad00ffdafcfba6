"""The linearizability checker: history in, verdict per key and explanation out.

P-compositionality: operations on different keys are independent objects, so
each key is checked on its own (in worker processes when there is much to do),
and the history is linearizable exactly when every key is.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from checker.history import Operation
from checker.models.base import Model
from checker.reduce import reduce
from checker.refute import refute
from checker.search import Budget, Entry, search
from checker.spool import Spool
from checker.zones import decide

if TYPE_CHECKING:
    from checker.explain import Counterexample

Verdict = bool | Literal["unknown"]
PARALLEL_MIN_ENTRIES = 20_000
DEFAULT_MEMORY_LIMIT = 4 * 2**30


@dataclass
class KeyResult:
    key: Any
    valid: Verdict
    ops: int
    configs: int = 0
    seconds: float = 0.0
    reason: str | None = None
    counterexample: Counterexample | None = None
    method: str = "search"  # how: "refutation", "zones", "search"; "none": out of time first

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "valid": self.valid, "ops": self.ops}
        out["method"] = self.method
        out["configs"] = self.configs
        out["seconds"] = round(self.seconds, 6)
        if self.reason is not None:
            out["reason"] = self.reason
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample.to_json()
        return out


@dataclass
class CheckResult:
    valid: Verdict
    model: str
    ops: int  # operations: invocations with their completions
    seconds: float
    keys: list[KeyResult] = field(default_factory=list)
    events: int | None = None  # lines of the history read (invocations and completions)

    def to_json(self) -> dict[str, Any]:
        bad = [k for k in self.keys if k.valid is not True]
        return {
            "valid": self.valid,
            "model": self.model,
            "ops": self.ops,
            **({"events": self.events} if self.events is not None else {}),
            "seconds": round(self.seconds, 6),
            "key_count": len(self.keys),
            "invalid_keys": [k.key for k in self.keys if k.valid is False],
            "unknown_keys": [k.key for k in self.keys if k.valid == "unknown"],
            "keys": [k.to_json() for k in bad],
        }


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    verdicts = list(verdicts)
    if any(v is False for v in verdicts):
        return False
    if any(v == "unknown" for v in verdicts):
        return "unknown"
    return True


def partition(model: Model, operations: Iterable[Operation]) -> dict[Any, list[Entry]]:
    """Entries per key, each list sorted by invocation; ops that constrain nothing dropped."""
    parts: dict[Any, list[Entry]] = defaultdict(list)
    for op in operations:
        call = model.prepare(op)
        if call is None:
            continue
        if op.completed is None and model.read_only(call):
            continue  # an indeterminate read changes nothing
        parts[op.key].append(Entry(call, op.invoked, op.completed, op))
    for entries in parts.values():
        entries.sort(key=lambda e: e.invoked)
    return dict(parts)


def check_key(
    model: Model,
    key: Any,
    entries: list[Entry],
    deadline: float | None,
    max_rss: int | None,
    explain: bool | float = True,
) -> KeyResult:
    started = time.monotonic()
    budget = Budget(deadline, max_rss)
    refuted = refute(model, entries)
    if refuted is not None:
        result = KeyResult(key, False, len(entries), reason="refuted without search",
                           method="refutation")
        if explain:
            result.counterexample = _explain().refutation_counterexample(
                model, key, entries, refuted, _explain().explain_budget(budget, started, explain))
        result.seconds = time.monotonic() - started
        return result
    late = _out_of_time(key, entries, budget, started)  # each phase is O(n log n),
    if late is not None:  # but n may be large
        return late
    zone = decide(model, entries, key)
    if zone is not None:
        result = KeyResult(key, zone.valid, len(entries), method="zones")
        if not zone.valid and explain:
            result.counterexample = _explain().zone_counterexample(
                model, key, entries, zone, _explain().explain_budget(budget, started, explain))
        result.seconds = time.monotonic() - started
        return result
    late = _out_of_time(key, entries, budget, started)
    if late is not None:
        return late
    reduced, _ = reduce(model, entries)
    outcome = search(model, reduced, model.init(), budget)
    if outcome.valid is None:
        result = KeyResult(key, "unknown", len(entries), outcome.configs, reason=outcome.reason)
    else:
        result = KeyResult(key, outcome.valid, len(entries), outcome.configs)
        if not outcome.valid and explain:
            # Aligned with `reduced`, but without the deadlines, which a window could
            # not justify on its own.
            windowed, _ = reduce(model, entries, deadlines=False)
            result.counterexample = _explain().counterexample(
                model, key, windowed, outcome, _explain().explain_budget(budget, started, explain))
    result.seconds = time.monotonic() - started
    return result


def _out_of_time(key: Any, entries: list[Entry], budget: Budget,
                 started: float) -> KeyResult | None:
    """An unknown verdict when the budget is spent before the next phase begins."""
    reason = budget.exceeded()
    if reason is None:
        return None
    return KeyResult(key, "unknown", len(entries), reason=reason, method="none",
                     seconds=time.monotonic() - started)


def _explain() -> Any:
    """checker.explain, imported when a counterexample is wanted (valid histories never
    pay for it)."""
    from checker import explain

    return explain


def check_operations(
    model: Model,
    operations: Iterable[Operation],
    time_limit: float | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    workers: int | None = None,
    explain: bool | float = True,
    ops_read: int | None = None,
    started: float | None = None,
) -> CheckResult:
    """Check `operations` against `model`, key by key. `explain`: counterexamples for
    invalid keys (False: none; a number: at least that many seconds on each, instead
    of as long as its check took, at least EXPLAIN_MIN_SECONDS). `ops_read`: how many
    history events the operations were paired from, reported as `events`. `started`:
    the time.monotonic() the time limit counts from (default: now)."""
    started = time.monotonic() if started is None else started
    deadline = None if time_limit is None else started + time_limit
    operations = list(operations)
    parts = partition(model, operations)
    total = sum(len(v) for v in parts.values())
    workers = workers or os.cpu_count() or 1
    args = [(model, key, part, deadline, memory_limit, explain) for key, part in parts.items()]
    if workers > 1 and len(parts) > 1 and total >= PARALLEL_MIN_ENTRIES:
        # Workers are forked and inherit the arguments; only indexes and results
        # cross the pipe. Biggest first, so one long key does not start last.
        order = sorted(range(len(args)), key=lambda i: -len(args[i][2]))
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        global _FORKED_ARGS
        _FORKED_ARGS = args
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(workers, len(parts)), mp_context=context) as pool:
                results = list(pool.map(_check_forked, order, chunksize=4))
        finally:
            _FORKED_ARGS = []
    else:
        results = [check_key(*a) for a in args]
    results.sort(key=lambda r: _sort_key(r.key))
    verdict = combine(r.valid for r in results)
    return CheckResult(
        valid=verdict,
        model=model.name,
        ops=len(operations),
        events=ops_read,
        seconds=time.monotonic() - started,
        keys=results,
    )


_FORKED_ARGS: list[tuple] = []


def check_spool(
    model: Model,
    spool: Spool,
    time_limit: float | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    workers: int | None = None,
    explain: bool | float = True,
    ops_read: int | None = None,
    started: float | None = None,
) -> CheckResult:
    """`check_operations` on the operations of a finished spool: all at once when it never
    went to disk, otherwise one bucket of keys at a time (each bucket in a forked worker
    when there is much to do, the largest first), so that memory is bounded by a bucket,
    not by the history. The verdicts and counterexamples are the same either way: each
    key is checked on exactly its own operations."""
    if not spool.spilled:
        return check_operations(model, spool.in_memory(), time_limit, memory_limit, workers,
                                explain, ops_read, started)
    started = time.monotonic() if started is None else started
    deadline = None if time_limit is None else started + time_limit
    sizes = spool.sizes()
    workers = workers or os.cpu_count() or 1
    args = (model, spool, deadline, memory_limit, explain)
    if workers > 1 and len(sizes) > 1 and spool.count >= PARALLEL_MIN_ENTRIES:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        global _FORKED_BUCKET_ARGS
        _FORKED_BUCKET_ARGS = args
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(workers, len(sizes)), mp_context=context) as pool:
                per_bucket = list(pool.map(_check_bucket_forked, [b for b, _ in sizes]))
        finally:
            _FORKED_BUCKET_ARGS = None
    else:
        per_bucket = [_check_bucket(b, *args) for b, _ in sizes]
    results = [r for bucket in per_bucket for r in bucket]
    results.sort(key=lambda r: _sort_key(r.key))
    return CheckResult(
        valid=combine(r.valid for r in results),
        model=model.name,
        ops=spool.count,
        events=ops_read,
        seconds=time.monotonic() - started,
        keys=results,
    )


_FORKED_BUCKET_ARGS: tuple | None = None


def _check_bucket(b: int, model: Model, spool: Spool, deadline: float | None,
                  max_rss: int | None, explain: bool | float) -> list[KeyResult]:
    parts = partition(model, spool.bucket(b))
    return [check_key(model, key, entries, deadline, max_rss, explain)
            for key, entries in parts.items()]


def _check_bucket_forked(b: int) -> list[KeyResult]:
    assert _FORKED_BUCKET_ARGS is not None
    return _check_bucket(b, *_FORKED_BUCKET_ARGS)


def _check_forked(i: int) -> KeyResult:
    return check_key(*_FORKED_ARGS[i])


def _sort_key(key: Any) -> tuple[str, str]:
    return (type(key).__name__, str(key))
