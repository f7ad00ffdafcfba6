"""The linearizability checker: history in, verdict per key and explanation out.

P-compositionality: operations on different keys are independent objects, so
each key is checked on its own (in worker processes when there is much to do),
and the history is linearizable exactly when every key is.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
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
    from checker.explain import Counterexample, Summary

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
    summary: Summary | None = None  # when the counterexample was left out of results.json

    def brief(self) -> Summary | None:
        """The culprit and the explanation, from the counterexample when there is one."""
        return self.counterexample.summary() if self.counterexample is not None \
            else self.summary

    def to_json(self, full: bool = True) -> dict[str, Any]:
        """`full`: with the counterexample (the summary is always there)."""
        out: dict[str, Any] = {"key": self.key, "valid": self.valid, "ops": self.ops}
        out["method"] = self.method
        out["configs"] = self.configs
        out["seconds"] = round(self.seconds, 6)
        if self.reason is not None:
            out["reason"] = self.reason
        brief = self.brief()
        if brief is not None:
            out["summary"] = brief.to_json()
        if self.counterexample is not None and full:
            out["counterexample"] = self.counterexample.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyResult:
        from checker.explain import Counterexample, Summary

        ce, brief = data.get("counterexample"), data.get("summary")
        return cls(
            key=data["key"], valid=data["valid"], ops=data["ops"],
            configs=data.get("configs", 0), seconds=data.get("seconds", 0.0),
            reason=data.get("reason"),
            counterexample=None if ce is None else Counterexample.from_json(ce),
            method=data.get("method", "search"),
            summary=None if brief is None or ce is not None else Summary.from_json(brief),
        )  # fmt: skip

    @property
    def first_bad_index(self) -> int | None:
        """Where in the history the culprit was invoked (None: no counterexample)."""
        brief = self.brief()
        return None if brief is None else brief.op.invoked


@dataclass
class CheckResult:
    valid: Verdict
    model: str
    ops: int  # operations: invocations with their completions
    seconds: float
    keys: list[KeyResult] = field(default_factory=list)
    events: int | None = None  # lines of the history read (invocations and completions)
    unlisted_valid: int = 0  # valid keys not in `keys` (read back from results.json)

    def to_json(self, max_counterexamples: int | None = None) -> dict[str, Any]:
        """Every key that is not valid, with its summary; the full counterexample for at
        most `max_counterexamples` of them (None: all), those whose culprit was invoked
        first."""
        bad = [k for k in self.keys if k.valid is not True]
        explained = sorted((k for k in bad if k.counterexample is not None),
                           key=lambda k: k.first_bad_index or 0)
        kept = explained if max_counterexamples is None else explained[:max_counterexamples]
        full = {id(k) for k in kept}
        summarised = sum(1 for k in bad if id(k) not in full and k.brief() is not None)
        return {
            "valid": self.valid,
            "model": self.model,
            "ops": self.ops,
            **({"events": self.events} if self.events is not None else {}),
            "seconds": round(self.seconds, 6),
            "key_count": len(self.keys) + self.unlisted_valid,
            "invalid_keys": [k.key for k in self.keys if k.valid is False],
            "unknown_keys": [k.key for k in self.keys if k.valid == "unknown"],
            "counterexamples_omitted": summarised,
            "keys": [k.to_json(full=id(k) in full) for k in bad],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        """What `to_json` wrote: the keys that are not valid, and how many are."""
        keys = [KeyResult.from_json(k) for k in data["keys"]]
        return cls(
            valid=data["valid"], model=data["model"], ops=data["ops"],
            seconds=data["seconds"], keys=keys, events=data.get("events"),
            unlisted_valid=data["key_count"] - len(keys),
        )  # fmt: skip

    @property
    def counterexamples_omitted(self) -> int:
        """Invalid keys with a summary but no counterexample."""
        return sum(1 for k in self.keys if k.counterexample is None and k.summary is not None)

    def first_violations(self) -> list[KeyResult]:
        """The invalid keys, the one whose culprit was invoked first first (those
        without a counterexample last)."""
        bad = [k for k in self.keys if k.valid is False]
        return sorted(bad, key=lambda k: (k.first_bad_index is None, k.first_bad_index or 0))


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
    summarize: bool = False,
) -> KeyResult:
    """One key's verdict; with `explain`, the counterexample of an invalid key; else with
    `summarize`, its one-line summary (cheap: no window is searched for)."""
    started = time.monotonic()
    budget = Budget(deadline, max_rss)
    refuted = refute(model, entries)
    if refuted is not None:
        result = KeyResult(key, False, len(entries), reason="refuted without search",
                           method="refutation")
        if explain:
            result.counterexample = _explain().refutation_counterexample(
                model, key, entries, refuted, _explain().explain_budget(budget, started, explain))
        elif summarize:
            result.summary = _explain().refutation_summary(model, key, entries, refuted)
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
        elif not zone.valid and summarize:
            result.summary = _explain().zone_summary(model, key, entries, zone)
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
        elif not outcome.valid and summarize:
            result.summary = _explain().search_summary(model, key, reduced, outcome)
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
    max_explained: int | None = None,
) -> CheckResult:
    """Check `operations` against `model`, key by key. `explain`: counterexamples for
    invalid keys (False: none; a number: at least that many seconds on each, instead
    of as long as its check took, at least EXPLAIN_MIN_SECONDS). `ops_read`: how many
    history events the operations were paired from, reported as `events`. `started`:
    the time.monotonic() the time limit counts from (default: now). `max_explained`:
    counterexamples for at most this many invalid keys, those whose culprit was invoked
    first, and a one-line summary for the others (None: a counterexample for each)."""
    started = time.monotonic() if started is None else started
    deadline = None if time_limit is None else started + time_limit
    operations = list(operations)
    parts = partition(model, operations)
    total = sum(len(v) for v in parts.values())
    workers = workers or os.cpu_count() or 1
    budgeted = explain is not False and max_explained is not None
    first_explain = False if budgeted else explain
    args = [(model, key, part, deadline, memory_limit, first_explain, budgeted)
            for key, part in parts.items()]
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
    if budgeted:
        assert max_explained is not None
        results = _explain_earliest(results, lambda chosen: {id(r): parts[r.key] for r in chosen},
                                    model, deadline, memory_limit, explain, max_explained)
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


def _explain_earliest(results: list[KeyResult],
                      entries_of: Callable[[list[KeyResult]], dict[int, list[Entry]]],
                      model: Model, deadline: float | None, memory_limit: int | None,
                      explain: bool | float, count: int) -> list[KeyResult]:
    """The first `count` invalid keys by their culprit's invocation, checked again with
    their counterexample (a key's check is cheap next to its explanation). `entries_of`
    gives the chosen keys' entries, by id of their result."""
    invalid = sorted((r for r in results if r.valid is False and r.summary is not None),
                     key=lambda r: r.first_bad_index or 0)[:count]
    entries = entries_of(invalid)
    again = {id(r): check_key(model, r.key, entries[id(r)], deadline, memory_limit, explain)
             for r in invalid}
    return [again.get(id(r), r) for r in results]


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
    max_explained: int | None = None,
) -> CheckResult:
    """`check_operations` on the operations of a finished spool: all at once when it never
    went to disk, otherwise one bucket of keys at a time (each bucket in a forked worker
    when there is much to do, the largest first), so that memory is bounded by a bucket,
    not by the history. The verdicts and counterexamples are the same either way: each
    key is checked on exactly its own operations. `max_explained`: as in
    check_operations (the buckets of the keys explained are read again)."""
    if not spool.spilled:
        return check_operations(model, spool.in_memory(), time_limit, memory_limit, workers,
                                explain, ops_read, started, max_explained)
    started = time.monotonic() if started is None else started
    deadline = None if time_limit is None else started + time_limit
    sizes = spool.sizes()
    workers = workers or os.cpu_count() or 1
    budgeted = explain is not False and max_explained is not None
    args = (model, spool, deadline, memory_limit, False if budgeted else explain, budgeted)
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
    if budgeted:
        assert max_explained is not None
        bucket_of = {id(r): b for (b, _), bucket in zip(sizes, per_bucket, strict=True)
                     for r in bucket}

        def entries_of(chosen: list[KeyResult]) -> dict[int, list[Entry]]:
            """The chosen keys' entries, their buckets read again one at a time."""
            out: dict[int, list[Entry]] = {}
            for b in sorted({bucket_of[id(r)] for r in chosen}):
                parts = partition(model, spool.bucket(b))
                out.update((id(r), parts[r.key]) for r in chosen if bucket_of[id(r)] == b)
            return out

        results = _explain_earliest(results, entries_of, model, deadline, memory_limit,
                                    explain, max_explained)
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
                  max_rss: int | None, explain: bool | float,
                  summarize: bool = False) -> list[KeyResult]:
    parts = partition(model, spool.bucket(b))
    return [check_key(model, key, entries, deadline, max_rss, explain, summarize)
            for key, entries in parts.items()]


def _check_bucket_forked(b: int) -> list[KeyResult]:
    assert _FORKED_BUCKET_ARGS is not None
    return _check_bucket(b, *_FORKED_BUCKET_ARGS)


def _check_forked(i: int) -> KeyResult:
    return check_key(*_FORKED_ARGS[i])


def _sort_key(key: Any) -> tuple[str, str]:
    return (type(key).__name__, str(key))
