"""Raft's safety properties, checked incrementally as the simulation runs.

- election safety: at most one leader per term, ever;
- log matching: two persisted entries with the same index and term are the same
  entry and follow the same term (so, by induction, the logs agree up to there);
- leader completeness: a new leader's log holds every entry known committed;
- state machine safety: no two nodes apply different entries at one index, and
  snapshots at one index hold the same state;
- a live node's commit index never goes backward.
"""

from __future__ import annotations

from typing import Protocol

from store.raft.types import Entry


class Violation(Exception):
    """A safety property does not hold."""


class CoreView(Protocol):
    @property
    def term(self) -> int: ...
    @property
    def commit(self) -> int: ...
    @property
    def first_index(self) -> int: ...
    @property
    def last_index(self) -> int: ...
    def term_at(self, index: int) -> int | None: ...


class Invariants:
    __slots__ = ("applied", "committed", "leaders", "persisted", "snapshots")

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> node
        # (index, term) -> (entry, term of the entry before it), over all disks
        self.persisted: dict[tuple[int, int], tuple[Entry, int]] = {}
        self.committed: dict[int, int] = {}  # index -> term, as any node committed it
        self.applied: dict[int, Entry] = {}  # index -> the entry applied there
        self.snapshots: dict[int, bytes] = {}  # index -> state machine there

    def leader(self, node: int, core: CoreView) -> bool:
        """Node is leader of ``core.term``; True if it is a new leader (then checked)."""
        term = core.term
        known = self.leaders.get(term)
        if known == node:
            return False
        if known is not None:
            raise Violation(f"election safety: nodes {known} and {node} both lead term {term}")
        self.leaders[term] = node
        first, last = core.first_index, core.last_index
        for index, t in self.committed.items():
            if index < first:
                continue  # in the new leader's snapshot: state machine safety covers it
            if index > last or core.term_at(index) != t:
                raise Violation(
                    f"leader completeness: node {node}, leader of term {term}, lacks "
                    f"committed entry {index} (term {t}); it has term {core.term_at(index)}"
                )
        return True

    def commit(self, node: int, core: CoreView, seen: int) -> None:
        """Node's commit went from ``seen`` to ``core.commit``: remember what it committed."""
        commit = core.commit
        if commit < seen:
            raise Violation(f"node {node}'s commit index went back from {seen} to {commit}")
        committed = self.committed
        for index in range(max(seen + 1, core.first_index), commit + 1):
            t = core.term_at(index)
            if t is None:
                continue
            known = committed.setdefault(index, t)
            if known != t:
                raise Violation(
                    f"node {node} committed entry {index} of term {t}; "
                    f"another node committed term {known} there"
                )

    def persist(self, node: int, entries: list[Entry], prev_term: int | None) -> None:
        """Node wrote ``entries`` to disk after an entry of ``prev_term``."""
        persisted = self.persisted
        for e in entries:
            key = (e.index, e.term)
            known = persisted.get(key)
            if known is None:
                if prev_term is not None:
                    persisted[key] = (e, prev_term)
            elif known[0] != e or (prev_term is not None and known[1] != prev_term):
                raise Violation(
                    f"log matching: node {node} persisted {e} after term {prev_term}; "
                    f"another log has {known[0]} after term {known[1]}"
                )
            prev_term = e.term

    def apply(self, node: int, applied: int, entry: Entry) -> None:
        if entry.index != applied + 1:
            raise Violation(f"node {node} applied entry {entry.index} right after {applied}")
        known = self.applied.setdefault(entry.index, entry)
        if known != entry:
            raise Violation(
                f"state machine safety: node {node} applied {entry} where another applied {known}"
            )

    def snapshot(self, node: int, index: int, state: bytes) -> None:
        known = self.snapshots.setdefault(index, state)
        if known != state:
            raise Violation(f"state machine safety: node {node}'s state at {index} differs")
