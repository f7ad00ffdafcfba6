"""The multi-version key index: every key's history since the last compaction.

One global revision, starting at 1 (etcd's fresh store). A write transaction
takes revision + 1 as its main revision for all its changes; if it changed
nothing the revision stays. A key's history is a list of generations of
(main revision, KeyValue or None for a tombstone), oldest first. Compaction at
revision C keeps, per key, the last entry at or below C (unless that is a
tombstone) and everything after it, as etcd's keyIndex.compact does.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from store.v3 import errors
from store.v3.messages import KeyValue

ALL = b""  # an end meaning "every key from the start on" (etcd's mkGteRange of "\0")


def range_end_bound(range_end: bytes) -> bytes | None:
    """etcd's mkGteRange: None for one key, ALL for "\\0", else the end itself."""
    if not range_end:
        return None
    if range_end == b"\x00":
        return ALL
    return range_end


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue]
    count: int
    rev: int  # the store's current revision, whatever revision was read


class MVCC:
    __slots__ = ("_history", "_keys", "_mains", "compact_revision", "revision", "stored_bytes")

    def __init__(self) -> None:
        self.revision = 1
        self.compact_revision = -1  # etcd's: nothing compacted yet, not even 0
        self._keys: list[bytes] = []  # every key with history, sorted
        self._history: dict[bytes, list[KeyValue | None]] = {}
        self._mains: dict[bytes, list[int]] = {}  # the main revision of each history entry
        self.stored_bytes = 0  # keys and values held (for the status's dbSize)

    # ---- reads -------------------------------------------------------------------

    def _span(self, key: bytes, end: bytes | None) -> list[bytes]:
        if end is None:
            return [key] if key in self._history else []
        lo = bisect.bisect_left(self._keys, key)
        if end == ALL:
            return self._keys[lo:]
        if end <= key:
            return []
        return self._keys[lo : bisect.bisect_left(self._keys, end, lo)]

    def at(self, key: bytes, rev: int) -> KeyValue | None:
        mains = self._mains.get(key)
        if mains is None:
            return None
        i = bisect.bisect_right(mains, rev)
        return self._history[key][i - 1] if i else None

    def range(self, key: bytes, end: bytes | None, rev: int = 0, limit: int = 0,
              count_only: bool = False, current: int | None = None) -> RangeResult:
        """Live keys in [key, end) at ``rev`` (0: the current one). ``current`` is
        the revision a write transaction reads at (its own changes included)."""
        cur = self.revision if current is None else current
        if rev > cur:
            raise errors.future_rev()
        if rev <= 0:
            rev = cur
        if rev < self.compact_revision:
            raise errors.compacted()
        found = []
        for k in self._span(key, end):
            kv = self.at(k, rev)
            if kv is not None:
                found.append(kv)
        if count_only:
            return RangeResult([], len(found), cur)
        if 0 < limit < len(found):
            return RangeResult(found[:limit], len(found), cur)
        return RangeResult(found, len(found), cur)

    def keys_in(self, key: bytes, end: bytes | None) -> int:
        return len(self._history) if end == ALL and not key else len(self._span(key, end))

    # ---- writes (main is the write transaction's revision) -------------------------

    def put(self, key: bytes, value: bytes, main: int, lease: int = 0) -> KeyValue | None:
        """Writes ``key``; returns what it held before (None: nothing)."""
        prev = self.at(key, main)
        if prev is None:
            kv = KeyValue(key, main, main, 1, value, lease)
        else:
            kv = KeyValue(key, prev.create_revision, main, prev.version + 1, value, lease)
        self.stored_bytes += len(key) + len(value)
        hist = self._history.get(key)
        if hist is None:
            bisect.insort(self._keys, key)
            self._history[key] = [kv]
            self._mains[key] = [main]
        elif self._mains[key][-1] == main:
            hist[-1] = kv  # written again in the same transaction
        else:
            hist.append(kv)
            self._mains[key].append(main)
        return prev

    def delete(self, key: bytes, end: bytes | None, main: int) -> list[KeyValue]:
        """Deletes the live keys in [key, end); returns them as they were."""
        gone = []
        for k in self._span(key, end):
            kv = self.at(k, main)
            if kv is None:
                continue
            gone.append(kv)
            if self._mains[k][-1] == main:
                self._history[k][-1] = None
            else:
                self._history[k].append(None)
                self._mains[k].append(main)
        return gone

    def compact(self, rev: int) -> None:
        """Forget history below ``rev``; raises etcd's errors for old and future revisions."""
        if rev <= self.compact_revision:
            raise errors.compacted()
        if rev > self.revision:
            raise errors.future_rev()
        self.compact_revision = rev
        dead = []
        for k, hist in self._history.items():
            mains = self._mains[k]
            i = bisect.bisect_right(mains, rev) - 1  # the entry visible at rev
            if i < 0:
                continue
            if hist[i] is None:
                i += 1
            if i:
                del hist[:i]
                del mains[:i]
            if not hist:
                dead.append(k)
        if dead:
            for k in dead:
                del self._history[k]
                del self._mains[k]
            gone = set(dead)
            self._keys = [k for k in self._keys if k not in gone]
        self.stored_bytes = sum(len(k) + sum(len(kv.value) for kv in h if kv is not None)
                                for k, h in self._history.items())

    # ---- snapshots -----------------------------------------------------------------

    def entries(self) -> list[tuple[bytes, list[tuple[int, KeyValue | None]]]]:
        return [(k, list(zip(self._mains[k], self._history[k], strict=True))) for k in self._keys]

    def load(self, revision: int, compact_revision: int,
             entries: list[tuple[bytes, list[tuple[int, KeyValue | None]]]]) -> None:
        self.revision = revision
        self.compact_revision = compact_revision
        self._keys = sorted(k for k, _ in entries)
        self._history = {k: [kv for _, kv in hist] for k, hist in entries}
        self._mains = {k: [m for m, _ in hist] for k, hist in entries}
        self.stored_bytes = sum(len(k) + sum(len(kv.value) for _, kv in h if kv is not None)
                                for k, h in entries)
