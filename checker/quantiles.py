"""Latency quantiles in bounded memory, for histories of any length.

`Quantiles` keeps the values themselves up to `exact_limit` (10,000 by default), and
the quantiles are then exact: the same as `set_full.quantiles` on the list. Past that
it folds them into a histogram of log-spaced buckets, each `RATIO` (1 %) wider than the
one below it, from 1 µs up (values at or under 1 µs share one bucket); a quantile is
then the geometric middle of the bucket that holds it, clamped to the smallest and
largest values seen, so it is within 0.5 % of the exact quantile (relative), and the
maximum stays exact. Memory: at most `exact_limit` floats, or one counter per bucket
in use (about 230 per factor of 10 between the fastest and the slowest operation).
See docs/checker.md.
"""

from __future__ import annotations

import math
from collections import Counter

RATIO = 1.01  # a bucket's upper bound over its lower bound
FLOOR = 0.001  # values at or under this share bucket 0 (milliseconds: 1 µs)
EXACT_LIMIT = 10_000
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
_LOG_RATIO = math.log(RATIO)


class Quantiles:
    """p50, p90, p99 and max of a stream of values, in bounded memory."""

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.exact_limit = exact_limit
        self.count = 0
        self.low = math.inf
        self.high = -math.inf
        self._values: list[float] | None = []
        self._buckets: Counter[int] = Counter()

    def add(self, value: float) -> None:
        self.count += 1
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if self._values is not None:
            self._values.append(value)
            if len(self._values) > self.exact_limit:
                for v in self._values:
                    self._buckets[_bucket(v)] += 1
                self._values = None
            return
        self._buckets[_bucket(value)] += 1

    def merge(self, other: Quantiles) -> None:
        """Fold another's values into this one (as if each had been added here)."""
        if other._values is not None:
            for v in other._values:
                self.add(v)
            return
        if self._values is not None:
            for v in self._values:
                self._buckets[_bucket(v)] += 1
            self._values = None
        self._buckets.update(other._buckets)
        self.count += other.count
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    @property
    def buckets(self) -> int:
        """Buckets in use (0 while the values are kept exactly)."""
        return len(self._buckets)

    @property
    def exact(self) -> bool:
        return self._values is not None

    def value(self, p: float) -> float:
        """The value of rank int(p * count) (0-based) in sorted order, or its estimate."""
        rank = min(self.count - 1, int(p * self.count))
        if self._values is not None:
            return sorted(self._values)[rank]
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen > rank:
                return min(self.high, max(self.low, _middle(bucket)))
        return self.high

    def to_json(self) -> dict[str, float] | None:
        if not self.count:
            return None
        if self._values is not None:
            ordered = sorted(self._values)
            n = len(ordered)
            out = {name: round(ordered[min(n - 1, int(p * n))], 3) for name, p in QUANTILES}
        else:
            out = {name: round(self.value(p), 3) for name, p in QUANTILES}
        out["max"] = round(self.high, 3)
        return out


def _bucket(value: float) -> int:
    if value <= FLOOR:
        return 0
    return 1 + int(math.log(value / FLOOR) / _LOG_RATIO)


def _middle(bucket: int) -> float:
    if bucket == 0:
        return FLOOR
    return FLOOR * RATIO ** (bucket - 1) * math.sqrt(RATIO)
