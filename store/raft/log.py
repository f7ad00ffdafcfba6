"""The in-memory Raft log: the entries after a compaction point, and the cursors
that say what the driver has been handed, has persisted and has been given to apply.

Entries live in a list with an offset (``entries[i].index == offset + i``), so
every lookup is index arithmetic. Terms never decrease along a log, which makes
the search for a term (fast backtracking) a bisection.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from operator import attrgetter

from store import failpoints as fp
from store.raft.types import Entry

_term_of = attrgetter("term")

# maybe_append's answer when a message would rewrite committed entries: only a
# broken or malicious peer sends that, and the core ignores the message.
REFUSED = -1


class RaftLog:
    __slots__ = ("applying", "committed", "entries", "offset", "persisted", "snap_term", "unsent")

    def __init__(self, snap_index: int = 0, snap_term: int = 0, entries: Sequence[Entry] = ()):
        self.entries: list[Entry] = list(entries)
        self.offset = snap_index + 1  # index of entries[0]
        self.snap_term = snap_term  # term of the entry at offset - 1 (compacted away)
        self.committed = snap_index
        # Entries up to ``applying`` have been handed out to apply (Ready.committed).
        self.applying = snap_index
        # The driver's disk matches this log up to ``persisted``; entries from
        # ``unsent`` on have not been handed out in a Ready yet.
        self.persisted = self.last_index
        self.unsent = self.persisted + 1

    @property
    def first_index(self) -> int:
        return self.offset

    @property
    def last_index(self) -> int:
        return self.offset + len(self.entries) - 1

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snap_term

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``, or None if compacted away or not there."""
        i = index - self.offset
        if i >= 0:
            return self.entries[i].term if i < len(self.entries) else None
        return self.snap_term if i == -1 else None

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as up to date."""
        mine = self.last_term
        return last_term > mine or (last_term == mine and last_index >= self.last_index)

    def slice(self, lo: int, hi: int, max_entries: int, max_bytes: int) -> list[Entry]:
        """Entries lo..hi (inclusive) within the limits; at least one if any."""
        hi = min(hi, lo + max_entries - 1)
        ents = self.entries[lo - self.offset : hi - self.offset + 1]
        size = 0
        for n, e in enumerate(ents):
            size += len(e.data)
            if size > max_bytes and n > 0:
                return ents[:n]
        return ents

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, ents: Sequence[Entry]
    ) -> int | None:
        """A follower's append: the index of the last new entry, None if the
        previous entry does not match, REFUSED if the message makes no sense.

        Only a real conflict (same index, different term) truncates; entries this
        log already has are skipped, so a stale or duplicate APPEND changes nothing.
        """
        if self.term(prev_index) != prev_term:
            return None
        last_new = prev_index + len(ents)
        if ents and (ents[0].index != prev_index + 1 or ents[-1].index != last_new):
            return REFUSED
        conflict = self._find_conflict(ents)
        if conflict:
            if conflict <= self.committed:
                if fp.ACTIVE is None or "vote-no-log-check" not in fp.ACTIVE:
                    return REFUSED
                # Planted bug (with the vote it lets through): a textbook follower
                # truncates; what it applied of the overwritten entries stays applied.
                self.committed = conflict - 1
            self.truncate_and_append(ents[conflict - prev_index - 1 :])
        commit = min(commit, last_new)
        if commit > self.committed:
            self.committed = commit
        return last_new

    def _find_conflict(self, ents: Sequence[Entry]) -> int:
        """The first index where ents differ from (or extend) this log; 0 if none."""
        if not ents or ents[0].index > self.last_index:
            return ents[0].index if ents else 0
        for e in ents:
            if self.term(e.index) != e.term:
                return e.index
        return 0

    def truncate_and_append(self, ents: Sequence[Entry]) -> None:
        first = ents[0].index
        if first <= self.last_index:
            del self.entries[first - self.offset :]
            self.unsent = min(self.unsent, first)
            self.persisted = min(self.persisted, first - 1)
        self.entries.extend(ents)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last (index, term) at or before ``index`` whose term is <= ``term``.

        Returns term 0 when the answer lies in the compacted part (etcd's
        findConflictByTerm).
        """
        if index > self.last_index:
            return index, 0
        hi = index - self.offset + 1
        if hi > 0:
            j = bisect_right(self.entries, term, 0, hi, key=_term_of) - 1
            if j >= 0:
                return self.offset + j, self.entries[j].term
        if index < self.offset - 1:
            return index, 0
        if self.snap_term <= term:
            return self.offset - 1, self.snap_term
        return self.offset - 2, 0  # below the compaction point: unknown

    def unstable_entries(self) -> list[Entry]:
        """Entries not yet handed out for persisting; marks them handed out."""
        start = self.unsent - self.offset
        if start >= len(self.entries):
            return []
        ents = self.entries[start:]
        self.unsent = self.last_index + 1
        return ents

    def has_unstable(self) -> bool:
        return self.unsent <= self.last_index

    def stable_to(self, index: int, term: int) -> None:
        """The driver persisted entries up to (index, term)."""
        if self.term(index) == term and index > self.persisted:
            self.persisted = index

    def next_committed(self) -> list[Entry]:
        """Committed entries not yet handed out to apply; marks them handed out."""
        if self.committed <= self.applying:
            return []
        ents = self.entries[self.applying + 1 - self.offset : self.committed + 1 - self.offset]
        self.applying = self.committed
        return ents

    def has_next_committed(self) -> bool:
        return self.committed > self.applying

    def next_persisted(self) -> list[Entry]:
        """Planted bug `apply-before-commit` (store/raft/core.py): the entries on disk
        past those handed out to apply, committed or not; marks them handed out."""
        if self.persisted <= self.applying:
            return []
        ents = self.entries[self.applying + 1 - self.offset : self.persisted + 1 - self.offset]
        self.applying = self.persisted
        return ents

    def compact(self, index: int) -> None:
        """Drop the entries up to ``index`` (which must be in the log)."""
        term = self.term(index)
        if term is None or index < self.offset:
            return
        del self.entries[: index - self.offset + 1]
        self.offset = index + 1
        self.snap_term = term

    def restore(self, index: int, term: int) -> None:
        """Replace the whole log by a snapshot at (index, term)."""
        self.entries = []
        self.offset = index + 1
        self.snap_term = term
        self.committed = index
        self.applying = index
        self.unsent = index + 1
        self.persisted = min(self.persisted, index)
