"""Which log indexes the WAL describes, and their terms: the rules replay follows.

The writer keeps one to name segments and to check each save; replay builds the
same one from the records, so both always agree on where the log stands.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from store.raft.types import Entry


class LogError(ValueError):
    """Entries that do not continue the log (a gap, a bad index or term order)."""


@dataclass(slots=True)
class LogShape:
    """The log is known from ``start + 1`` to ``last``; up to ``start`` it is in a snapshot.

    Terms are kept as runs (``run_index[k]`` is the first index of the k-th run,
    ``run_term[k]`` its term), since terms change rarely.
    """

    start: int = 0
    start_term: int | None = 0  # None: unknown (the log was overwritten below start)
    last: int = 0
    run_index: list[int] = field(default_factory=list)
    run_term: list[int] = field(default_factory=list)

    def copy(self) -> LogShape:
        return LogShape(
            self.start, self.start_term, self.last, self.run_index.copy(), self.run_term.copy()
        )

    def term_at(self, index: int) -> int | None:
        if index == self.start:
            return self.start_term
        if self.start < index <= self.last:
            return self.run_term[bisect_right(self.run_index, index) - 1]
        return None

    def append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries``; from ``entries[0].index`` on they replace what was there."""
        if not entries:
            return
        first = entries[0].index
        if first < 1:
            raise LogError(f"entry index {first} < 1")
        if first > self.last + 1:
            raise LogError(f"entries start at {first}, the log ends at {self.last}: a gap")
        for k, e in enumerate(entries):
            if e.index != first + k:
                raise LogError(f"entries are not contiguous: {e.index} after {first + k - 1}")
        if first <= self.start:
            # An overwrite below what is known: the log is known from `first` on.
            self.start, self.start_term = first - 1, None
            self.run_index.clear()
            self.run_term.clear()
        else:
            cut = bisect_right(self.run_index, first - 1)
            del self.run_index[cut:]
            del self.run_term[cut:]
        prev = self.term_at(first - 1)
        for e in entries:
            if prev is not None and e.term < prev:
                raise LogError(f"entry {e.index} has term {e.term} after term {prev}")
            if e.term != prev or not self.run_index:
                self.run_index.append(e.index)
                self.run_term.append(e.term)
                prev = e.term
        self.last = entries[-1].index

    def matches(self, index: int, term: int) -> bool:
        """Whether the log holds entry (index, term): then a snapshot there keeps the
        log after it (Raft's rule)."""
        return self.term_at(index) == term

    def restart(self, index: int, term: int) -> None:
        """The log restarts after snapshot (index, term)."""
        self.start, self.start_term, self.last = index, term, index
        self.run_index.clear()
        self.run_term.clear()
