"""The in-memory Raft log: index arithmetic, conflicts, cursors."""

from __future__ import annotations

import random

import pytest

from store import failpoints as fp
from store.raft.log import REFUSED, RaftLog
from store.raft.types import Entry


def log_of(terms: list[int], snap_index: int = 0, snap_term: int = 0) -> RaftLog:
    ents = [Entry(t, snap_index + 1 + i) for i, t in enumerate(terms)]
    return RaftLog(snap_index, snap_term, ents)


def reference_conflict_by_term(log: RaftLog, index: int, term: int) -> tuple[int, int]:
    """etcd's findConflictByTerm, one entry at a time."""
    if index > log.last_index:
        return index, 0
    while index > 0:
        t = log.term(index)
        if t is None:
            return index, 0
        if t <= term:
            return index, t
        index -= 1
    return 0, 0


@pytest.mark.parametrize("seed", range(20))
def test_find_conflict_by_term_matches_the_linear_search(seed: int) -> None:
    rng = random.Random(seed)
    snap_index = rng.choice([0, 0, rng.randint(1, 50)])
    snap_term = rng.randint(1, 3) if snap_index else 0
    terms, t = [], snap_term
    for _ in range(rng.randint(0, 60)):
        t += rng.random() < 0.15
        terms.append(max(t, 1))
    log = log_of(terms, snap_index, snap_term)
    for _ in range(200):
        index = rng.randint(0, log.last_index + 3)
        term = rng.randint(0, t + 2)
        got = log.find_conflict_by_term(index, term)
        want = reference_conflict_by_term(log, index, term)
        assert got == want, f"seed {seed}: index {index} term {term}"


def test_terms_and_bounds_around_a_compaction_point() -> None:
    log = log_of([2, 2, 3], snap_index=10, snap_term=2)
    assert (log.first_index, log.last_index, log.last_term) == (11, 13, 3)
    assert [log.term(i) for i in (9, 10, 11, 13, 14)] == [None, 2, 2, 3, None]
    log.compact(12)
    assert (log.first_index, log.term(12), log.term(11)) == (13, 2, None)


def test_maybe_append_skips_what_it_has_and_truncates_only_on_conflict() -> None:
    log = log_of([1, 1, 1, 1])
    log.persisted = 4
    log.unsent = 5
    assert log.maybe_append(1, 1, 0, [Entry(1, 2), Entry(1, 3)]) == 3
    assert log.last_index == 4 and log.unsent == 5
    assert log.maybe_append(2, 1, 2, [Entry(2, 3)]) == 3
    assert log.last_index == 3 and log.term(3) == 2
    assert (log.unsent, log.persisted, log.committed) == (3, 2, 2)
    assert log.unstable_entries() == [Entry(2, 3)]
    assert log.maybe_append(3, 9, 0, []) is None  # previous term does not match
    assert log.maybe_append(1, 1, 0, [Entry(5, 2)]) == REFUSED  # would rewrite commit 2
    assert log.maybe_append(1, 1, 0, [Entry(5, 7)]) == REFUSED  # not contiguous


def test_with_vote_no_log_check_a_follower_truncates_committed_entries() -> None:
    """The planted bug takes the defence against it away too (docs/store.md): a leader
    elected without the log check overwrites what this follower knew committed."""
    log = log_of([1, 1, 1, 1])
    log.committed = 3
    fp.enable(["vote-no-log-check"])
    try:
        assert log.maybe_append(1, 1, 2, [Entry(2, 2)]) == 2
    finally:
        fp.enable([])
    assert (log.last_index, log.term(2), log.committed) == (2, 2, 2)
    assert log.maybe_append(1, 1, 0, [Entry(3, 2)]) == REFUSED  # off: refused again


def test_slice_limits_by_count_and_bytes_but_returns_at_least_one() -> None:
    log = RaftLog(0, 0, [Entry(1, i, data=b"x" * 10) for i in range(1, 11)])
    assert len(log.slice(1, 10, 4, 1000)) == 4
    assert len(log.slice(1, 10, 100, 25)) == 2
    assert len(log.slice(3, 10, 100, 5)) == 1


def test_committed_entries_come_out_once() -> None:
    log = log_of([1, 1, 1])
    log.committed = 2
    assert [e.index for e in log.next_committed()] == [1, 2]
    assert log.next_committed() == []
    log.committed = 3
    assert [e.index for e in log.next_committed()] == [3]


def test_restore_replaces_the_log() -> None:
    log = log_of([1, 1, 2])
    log.restore(20, 4)
    assert (log.first_index, log.last_index, log.last_term, log.committed) == (21, 20, 4, 20)
    assert log.unstable_entries() == [] and log.next_committed() == []
