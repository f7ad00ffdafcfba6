"""The Ready plan both drivers follow (store/raft/plan.py): what leaves and what is
applied before the fsync, and what after."""

from __future__ import annotations

from store.raft.plan import EARLY, Durable, durable_after, plan_ready
from store.raft.types import (
    Entry,
    HardState,
    Message,
    MsgType,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)


def _msg(t: MsgType, to: int = 2) -> Message:
    return Message(t, to, 1, 5)


def _entries(lo: int, hi: int, term: int = 5) -> list[Entry]:
    return [Entry(term, i) for i in range(lo, hi + 1)]


ALL_KINDS = [_msg(t) for t in MsgType]
DURABLE = Durable(last_index=10, term=5, vote=1)


def test_nothing_to_persist_means_everything_now() -> None:
    rd = Ready(
        hard_state=HardState(5, 1, commit=10), messages=list(ALL_KINDS), committed=_entries(9, 10)
    )
    for role in Role:
        plan = plan_ready(rd, role, DURABLE)
        assert not plan.fsync
        assert plan.send_now == ALL_KINDS and not plan.send_after
        assert plan.apply_now == rd.committed and not plan.apply_after


def test_a_follower_sends_nothing_before_its_fsync() -> None:
    rd = Ready(entries=_entries(11, 12), messages=list(ALL_KINDS), committed=_entries(9, 10))
    for role in (Role.FOLLOWER, Role.CANDIDATE, Role.PRE_CANDIDATE):
        plan = plan_ready(rd, role, DURABLE)
        assert plan.fsync and not plan.send_now and plan.send_after == ALL_KINDS
        # Entries 9 and 10 are on disk already: applied without waiting.
        assert plan.apply_now == _entries(9, 10) and not plan.apply_after


def test_a_leader_sends_appends_heartbeats_and_snapshots_before_its_fsync() -> None:
    rd = Ready(entries=_entries(11, 12), messages=list(ALL_KINDS))
    plan = plan_ready(rd, Role.LEADER, DURABLE)
    assert plan.fsync
    assert (
        {m.type for m in plan.send_now}
        == EARLY
        == {
            MsgType.APPEND,
            MsgType.HEARTBEAT,
            MsgType.SNAPSHOT,
        }
    )
    assert {m.type for m in plan.send_after} == set(MsgType) - EARLY
    # The role that counts is the one after this Ready.
    stepped_down = Ready(soft_state=SoftState(0, Role.FOLLOWER), entries=_entries(11, 11))
    stepped_down.messages = list(ALL_KINDS)
    assert not plan_ready(stepped_down, Role.LEADER, DURABLE).send_now
    elected = Ready(soft_state=SoftState(1, Role.LEADER), entries=_entries(11, 11))
    elected.messages = list(ALL_KINDS)
    assert plan_ready(elected, Role.CANDIDATE, DURABLE).send_now


def test_a_leader_whose_term_or_vote_is_not_on_disk_sends_nothing_early() -> None:
    # A one-member cluster elects itself within one Ready: term and vote not yet durable.
    rd = Ready(
        hard_state=HardState(6, 1, 0), entries=_entries(11, 11, 6), messages=[_msg(MsgType.APPEND)]
    )
    plan = plan_ready(rd, Role.LEADER, DURABLE)
    assert plan.fsync and not plan.send_now and len(plan.send_after) == 1
    # Only the commit moved: that does not need the disk first.
    rd = Ready(
        hard_state=HardState(5, 1, 12), entries=_entries(11, 12), messages=[_msg(MsgType.APPEND)]
    )
    assert plan_ready(rd, Role.LEADER, DURABLE).send_now


def test_a_change_of_vote_alone_needs_the_fsync() -> None:
    rd = Ready(hard_state=HardState(5, 3, 0), messages=[_msg(MsgType.VOTE_RESP, 3)])
    plan = plan_ready(rd, Role.FOLLOWER, Durable(10, 5, 0))
    assert plan.fsync and not plan.send_now and len(plan.send_after) == 1


def test_committed_entries_not_on_disk_wait_for_the_fsync() -> None:
    rd = Ready(entries=_entries(11, 12), committed=_entries(9, 12))
    plan = plan_ready(rd, Role.FOLLOWER, DURABLE)
    assert plan.apply_now == _entries(9, 10) and plan.apply_after == _entries(11, 12)


def test_committed_entries_this_ready_overwrites_are_not_on_disk() -> None:
    # The disk reached 10, but this Ready rewrites it from 8 on (a new leader's
    # entries): 8..9 as committed here are not the ones on disk.
    rd = Ready(entries=_entries(8, 9, term=6), committed=_entries(7, 9, term=6))
    plan = plan_ready(rd, Role.FOLLOWER, DURABLE)
    assert [e.index for e in plan.apply_now] == [7]
    assert [e.index for e in plan.apply_after] == [8, 9]


def test_a_snapshot_is_restored_and_applied_after_the_fsync() -> None:
    snap = Snapshot(SnapshotMeta(20, 5, (1, 2, 3)), b"")
    rd = Ready(snapshot=snap, committed=_entries(21, 21), messages=[_msg(MsgType.APPEND_RESP)])
    plan = plan_ready(rd, Role.FOLLOWER, DURABLE)
    assert plan.fsync and not plan.apply_now and plan.apply_after == _entries(21, 21)
    assert durable_after(DURABLE, rd) == Durable(20, 5, 1)


def test_durable_after_follows_the_write() -> None:
    assert durable_after(DURABLE, Ready(entries=_entries(8, 9, 6))) == Durable(9, 5, 1)
    assert durable_after(DURABLE, Ready(hard_state=HardState(7, 2, 3))) == Durable(10, 7, 2)


def test_the_node_and_the_simulator_run_the_same_plan() -> None:
    import store.node
    import store.raft.simulator

    assert store.node.plan_ready is plan_ready
    assert store.raft.simulator.plan_ready is plan_ready
