"""etcd's auto-compaction (--auto-compaction-mode, --auto-compaction-retention).

periodic (retention a duration, or a number of hours): the leader samples the
revision every retention/10 (capped at 6 minutes) and, every retention (capped
at an hour), compacts to the revision it held a retention ago, as etcd 3.4's
compactor.Periodic. revision (retention a number of revisions): every 5 minutes,
compacts to the current revision less the retention, as compactor.Revision.
Times are monotonic seconds; the node calls ``due`` on each tick while leader.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

REVISION_INTERVAL_S = 300.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass(frozen=True, slots=True)
class AutoCompaction:
    mode: str = "periodic"  # or "revision"
    retention: float = 0.0  # seconds (periodic) or revisions (revision); 0: off

    @classmethod
    def parse(cls, mode: str, retention: str) -> AutoCompaction:
        """The flags' values; ValueError names the flag at fault."""
        if mode not in ("periodic", "revision"):
            raise ValueError(f"--auto-compaction-mode: {mode!r} is not periodic or revision")
        text = retention.strip() or "0"
        if mode == "revision":
            if not text.isdigit():
                raise ValueError(f"--auto-compaction-retention: {retention!r} is not a revision "
                                 "count (mode revision)")
            return cls(mode, float(int(text)))
        if text.isdigit():
            return cls(mode, int(text) * 3600.0)  # etcd: a bare number is hours
        if not re.fullmatch(f"(?:{_DURATION.pattern})+", text):
            raise ValueError(f"--auto-compaction-retention: {retention!r} is neither hours nor a "
                             "duration like 30m or 1h30m")
        return cls(mode, sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)))


class AutoCompactor:
    def __init__(self, cfg: AutoCompaction) -> None:
        self.cfg = cfg
        self._samples: deque[tuple[float, int]] = deque()
        self._next_sample: float | None = None
        self._next_compact: float | None = None
        self._last = 0

    def due(self, now: float, revision: int) -> int | None:
        """The revision to compact at now, if any (called by the leader)."""
        if self.cfg.retention <= 0:
            return None
        if self.cfg.mode == "revision":
            return self._revision(now, revision)
        return self._periodic(now, revision)

    def _revision(self, now: float, revision: int) -> int | None:
        if self._next_compact is None:
            self._next_compact = now + REVISION_INTERVAL_S
            return None
        if now < self._next_compact:
            return None
        self._next_compact = now + REVISION_INTERVAL_S
        target = revision - int(self.cfg.retention)
        if target <= 0 or target == self._last:
            return None
        self._last = target
        return target

    def _periodic(self, now: float, revision: int) -> int | None:
        period = self.cfg.retention
        interval = min(period, 3600.0)
        step = interval / 10
        if self._next_sample is None:
            self._next_sample = now
            self._next_compact = now + period
        if now >= self._next_sample:
            self._samples.append((now, revision))
            self._next_sample = now + step
        assert self._next_compact is not None
        if now < self._next_compact:
            return None
        self._next_compact = now + interval
        # the newest sample taken at least a retention ago
        target = None
        while self._samples and self._samples[0][0] <= now - period + step / 2:
            target = self._samples.popleft()[1]
        if target is None or target <= self._last:
            return None
        self._last = target
        return target
