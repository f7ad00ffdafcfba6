"""Jepsen's set-full analysis: what became of every element added to a set.

The history has `add` operations (value: the element) and `read` operations (value: every
element seen), each on a set's `key`. For each element, from the time it was *known* to
be in the set (its add acknowledged, or a read that saw it completed, whichever came
first), every read that began later should contain it:

- `stable`: every such read saw it;
- `stale`: some read that began after it was known missed it, and a later read saw it
  (a stale read: invalid when the set claims to be linearizable);
- `lost`: after it was known, it vanished and no later read saw it again (invalid);
- `never-read`: no read began after it was known (no verdict);
- `unexpected`: a read returned an element nobody added, or one whose add definitely
  failed (invalid).

The latency of each element is from its add's invocation to the completion of the first
read that saw it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from checker.history import Op, timed_pairs


@dataclass
class Quantiles:
    p50: float
    p90: float
    p99: float
    max: float

    def to_json(self) -> dict[str, float]:
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}

    @classmethod
    def from_json(cls, data: dict[str, float]) -> Quantiles:
        return cls(data["p50"], data["p90"], data["p99"], data["max"])


@dataclass
class SetKeyResult:
    key: Any
    valid: bool
    attempted: int
    acknowledged: int
    stable: int
    lost: list[Any] = field(default_factory=list)
    stale: list[Any] = field(default_factory=list)
    never_read: int = 0  # elements no read began after
    unexpected: list[Any] = field(default_factory=list)
    visibility_ms: Quantiles | None = None  # from an add's invocation to its first read

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "valid": self.valid,
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "stable": self.stable,
            "lost": self.lost,
            "stale": self.stale,
            "never_read": self.never_read,
            "unexpected": self.unexpected,
            "visibility_ms": None if self.visibility_ms is None else self.visibility_ms.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SetKeyResult:
        visibility = data.get("visibility_ms")
        return cls(
            key=data["key"], valid=data["valid"], attempted=data["attempted"],
            acknowledged=data["acknowledged"], stable=data["stable"], lost=list(data["lost"]),
            stale=list(data["stale"]), never_read=data["never_read"],
            unexpected=list(data["unexpected"]),
            visibility_ms=None if visibility is None else Quantiles.from_json(visibility),
        )  # fmt: skip


@dataclass
class SetFullResult:
    valid: bool
    keys: list[SetKeyResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "lost": self.lost,
            "stale": self.stale,
            "unexpected": self.unexpected,
            "never_read": self.never_read,
            "stable": self.stable,
            "attempted": self.attempted,
            "keys": [k.to_json() for k in self.keys],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SetFullResult:
        """The per-key results; the totals are sums of theirs."""
        return cls(data["valid"], [SetKeyResult.from_json(k) for k in data["keys"]])

    @property
    def lost(self) -> int:
        return sum(len(k.lost) for k in self.keys)

    @property
    def stale(self) -> int:
        return sum(len(k.stale) for k in self.keys)

    @property
    def unexpected(self) -> int:
        return sum(len(k.unexpected) for k in self.keys)

    @property
    def never_read(self) -> int:
        return sum(k.never_read for k in self.keys)

    @property
    def stable(self) -> int:
        return sum(k.stable for k in self.keys)

    @property
    def attempted(self) -> int:
        return sum(k.attempted for k in self.keys)


def quantiles(values: list[float]) -> dict[str, float] | None:
    found = latency_quantiles(values)
    return None if found is None else found.to_json()


def latency_quantiles(values: list[float]) -> Quantiles | None:
    if not values:
        return None
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return Quantiles(q(0.5), q(0.9), q(0.99), round(ordered[-1], 3))


@dataclass
class _Add:
    invoked: int
    result: str
    completed: int | None


@dataclass
class _Read:
    invoked: int
    completed: int
    seen: frozenset[Any]


def check_set_full(ops: Iterable[Op], linearizable: bool = True) -> SetFullResult:
    """`ops`: a list, or a stream read from a file (one pass; memory: the adds and the
    reads' contents, not the history)."""
    adds: dict[Any, dict[Any, _Add]] = defaultdict(dict)
    reads: dict[Any, list[_Read]] = defaultdict(list)
    for timed in timed_pairs(ops):
        op = timed.operation
        done = timed.completed_ns if op.completed is not None else None
        if op.f == "add":
            adds[op.key][op.value] = _Add(timed.invoked_ns, op.outcome, done)
        elif op.f == "read" and op.outcome == "ok" and done is not None:
            seen = frozenset(op.value or ())
            reads[op.key].append(_Read(timed.invoked_ns, done, seen))
    results = [
        _check_key(key, adds.get(key, {}), sorted(reads.get(key, []), key=lambda r: r.invoked),
                   linearizable)
        for key in sorted(set(adds) | set(reads), key=str)
    ]  # fmt: skip
    return SetFullResult(all(r.valid for r in results), results)


def _check_key(
    key: Any, adds: dict[Any, _Add], reads: list[_Read], linearizable: bool
) -> SetKeyResult:
    result = SetKeyResult(
        key, True, len(adds), sum(1 for a in adds.values() if a.result == "ok"), 0
    )
    seen_anywhere: set[Any] = set().union(*(r.seen for r in reads)) if reads else set()
    result.unexpected = sorted(
        (e for e in seen_anywhere if e not in adds or adds[e].result == "fail"), key=str
    )
    latencies_ms: list[float] = []
    for element, add in sorted(adds.items(), key=lambda item: str(item[0])):
        if add.result == "fail":
            continue
        present = [r for r in reads if element in r.seen]
        known_at = [r.completed for r in present[:1]]
        if add.result == "ok" and add.completed is not None:
            known_at.append(add.completed)
        if not known_at:
            continue  # an indeterminate add nobody saw: it may never have happened
        known = min(known_at)
        if present:
            latencies_ms.append((min(r.completed for r in present) - add.invoked) / 1e6)
        later = [r for r in reads if r.invoked > known]
        if not later:
            result.never_read += 1
            continue
        missed = [r for r in later if element not in r.seen]
        if not missed:
            result.stable += 1
        elif element in later[-1].seen:
            result.stale.append(element)
        else:
            result.lost.append(element)
    result.visibility_ms = latency_quantiles(latencies_ms)
    result.valid = (
        not result.lost and not result.unexpected and (not linearizable or not result.stale)
    )
    return result
