"""The Raft core, driven by hand: a few cores, messages delivered one by one.

`Net` is a minimal synchronous driver: it persists (in memory) and advances every
Ready at once, and holds sent messages until a test delivers or drops them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from store.raft.core import TRANSFER_CONTEXT, Raft
from store.raft.types import (
    NONE,
    Config,
    Entry,
    EntryType,
    HardState,
    Message,
    MsgType,
    ReadState,
    Restored,
    Role,
    Snapshot,
    SnapshotMeta,
)


def cfg(node: int, n: int = 3, **kw) -> Config:
    return Config(id=node, peers=tuple(range(1, n + 1)), seed=node, **kw)


class Net:
    """Cores plus what their drivers would have done with each Ready."""

    def __init__(self, n: int = 3, restored: dict[int, Restored] | None = None, **kw) -> None:
        restored = restored or {}
        self.cores = {
            i: Raft(cfg(i, n, **kw), restored.get(i, Restored())) for i in range(1, n + 1)
        }
        self.inflight: list[Message] = []
        self.hard: dict[int, HardState] = {}
        self.stored: dict[int, list[Entry]] = {i: list(r.entries) for i, r in restored.items()}
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.cores}
        self.snapshots: dict[int, list[Snapshot]] = {i: [] for i in self.cores}
        self.read_states: dict[int, list[ReadState]] = {i: [] for i in self.cores}
        self.dropped: dict[int, list[bytes]] = {i: [] for i in self.cores}
        self.dropped_reads: dict[int, list[bytes]] = {i: [] for i in self.cores}
        self.down: set[int] = set()  # isolated: messages to and from them are lost

    def __getitem__(self, node: int) -> Raft:
        return self.cores[node]

    def flush(self) -> None:
        """Persist, 'send' and apply every pending Ready."""
        for node, core in self.cores.items():
            while core.has_ready():
                rd = core.ready()
                if rd.snapshot is not None:
                    self.snapshots[node].append(rd.snapshot)
                    self.stored[node] = []
                if rd.entries:
                    log = self.stored.setdefault(node, [])
                    first = rd.entries[0].index
                    while log and log[-1].index >= first:
                        log.pop()
                    log.extend(rd.entries)
                if rd.hard_state:
                    self.hard[node] = rd.hard_state
                self.inflight.extend(rd.messages)
                self.applied[node].extend(rd.committed)
                self.read_states[node].extend(rd.read_states)
                self.dropped[node].extend(rd.dropped)
                self.dropped_reads[node].extend(rd.dropped_reads)
                core.advance(rd)

    def take(self, pred: Callable[[Message], bool] = lambda m: True) -> list[Message]:
        """Remove and return the in-flight messages matching ``pred``."""
        self.flush()
        out = [m for m in self.inflight if pred(m)]
        self.inflight = [m for m in self.inflight if not pred(m)]
        return out

    def deliver(self, pred: Callable[[Message], bool] = lambda m: True, rounds: int = 100) -> int:
        """Deliver matching messages (and the answers they cause) until quiet."""
        count = 0
        for _ in range(rounds):
            msgs = self.take(pred)
            if not msgs:
                return count
            for m in msgs:
                if m.to not in self.down and m.frm not in self.down:
                    self.cores[m.to].step(m)
                    count += 1
        raise AssertionError(f"still busy after {rounds} rounds")

    def tick(self, node: int, times: int = 1) -> None:
        for _ in range(times):
            self.cores[node].tick()
        self.flush()

    def campaign(self, node: int) -> None:
        """Tick ``node`` (only) until its election timeout fires."""
        core = self.cores[node]
        before = (core.role, core.term)
        for _ in range(100):
            core.tick()
            if (core.role, core.term) != before:
                break
        self.flush()

    def elect(self, node: int) -> Raft:
        self.campaign(node)
        self.deliver()
        assert self.cores[node].role == Role.LEADER
        return self.cores[node]


def entries(terms: list[int], start: int = 1) -> tuple[Entry, ...]:
    return tuple(
        Entry(t, start + i, EntryType.NORMAL, b"x%d" % (start + i)) for i, t in enumerate(terms)
    )


def types(msgs: list[Message]) -> list[MsgType]:
    return [m.type for m in msgs]


# -- elections ---------------------------------------------------------------


def test_pre_vote_election_keeps_term_until_a_majority_agrees() -> None:
    net = Net()
    net.campaign(1)
    n1 = net[1]
    assert n1.role == Role.PRE_CANDIDATE and n1.term == 0 and n1.vote == NONE
    prevotes = net.take()
    assert types(prevotes) == [MsgType.PREVOTE] * 2
    assert all(m.term == 1 and m.index == 0 for m in prevotes)
    for m in prevotes:
        net[m.to].step(m)
    # Granting a pre-vote changes nothing on the voter.
    assert (net[2].term, net[2].vote, net[3].term) == (0, NONE, 0)
    net.deliver()
    assert n1.role == Role.LEADER and n1.term == 1 and n1.vote == 1
    assert net.hard[2] == HardState(term=1, vote=1, commit=1)
    # The new leader's NOOP is committed everywhere.
    assert [e.type for e in net.applied[2]] == [EntryType.NOOP]
    assert net[2].leader == net[3].leader == 1


def ticks_to_campaign(node: Raft, limit: int) -> int:
    for ticks in range(1, limit + 1):
        node.tick()
        if node.role != Role.FOLLOWER:
            return ticks
    return limit + 1


@pytest.mark.parametrize("election", [3, 10])
def test_election_timeout_is_randomised_within_bounds(election: int) -> None:
    waits = set()
    for seed in range(40):
        node = Raft(Config(id=1, peers=(1, 2, 3), election_ticks=election, seed=seed))
        first = ticks_to_campaign(node, 3 * election)
        assert election <= first < 2 * election, f"seed {seed}"
        waits.add(first)
        # Redrawn on every reset: the next timeout is in range too.
        node.step(Message(MsgType.HEARTBEAT, 1, 2, term=5))
        assert node.role == Role.FOLLOWER
        again = ticks_to_campaign(node, 3 * election)
        assert election <= again < 2 * election, f"seed {seed}"
    assert len(waits) > 1


@pytest.mark.parametrize("election", [3, 10])
def test_a_started_member_that_advances_its_election_campaigns_within_one_timeout(
    election: int,
) -> None:
    waits = set()
    for seed in range(40):
        node = Raft(Config(id=1, peers=(1, 2, 3), election_ticks=election, seed=seed))
        node.advance_election()
        first = ticks_to_campaign(node, 3 * election)
        assert 1 <= first <= election, f"seed {seed}"
        waits.add(first)
    assert len(waits) > 1  # still randomised: members restarted together do not collide


def test_advancing_the_election_with_a_leader_known_changes_nothing() -> None:
    node = Raft(Config(id=1, peers=(1, 2, 3), election_ticks=10, seed=1))
    node.step(Message(MsgType.HEARTBEAT, 1, 2, term=5))
    node.advance_election()
    assert ticks_to_campaign(node, 30) >= 10


def test_vote_is_persisted_in_the_ready_that_sends_it() -> None:
    net = Net(pre_vote=False)
    net.campaign(1)
    vote = net.take()[0]
    net[vote.to].step(vote)
    rd = net[vote.to].ready()
    grants = [m for m in rd.messages if m.type == MsgType.VOTE_RESP and not m.reject]
    assert grants and rd.hard_state == HardState(term=1, vote=1, commit=0)


def test_candidate_with_a_stale_log_loses() -> None:
    longer = Restored(HardState(term=2), entries=entries([1, 2]))
    net = Net(restored={2: longer, 3: longer}, pre_vote=False)
    net.campaign(1)
    net.deliver()
    assert net[1].role != Role.LEADER
    assert net[2].vote == NONE and net[3].vote == NONE


def test_a_follower_in_lease_ignores_votes_and_keeps_its_term() -> None:
    net = Net()
    net.elect(1)
    term = net[1].term
    net.down.add(3)
    net.campaign(3)  # node 3 cannot hear the leader and tries a pre-vote
    net.down.clear()
    prevotes = net.take(lambda m: m.frm == 3)
    assert types(prevotes) == [MsgType.PREVOTE] * 2
    for m in prevotes:
        net[m.to].step(m)
    answers = net.take(lambda m: m.to == 3)
    assert answers == []  # both the leader and node 2 ignore it
    assert net[1].role == Role.LEADER and net[1].term == net[2].term == term


def test_followers_that_forget_a_dead_leader_elect_a_new_one_within_half_a_timeout() -> None:
    net = Net(election_ticks=10)
    net.elect(1)
    term = net[1].term
    net.down.add(1)  # the leader's process is gone: its connections closed
    net[2].forget_leader()
    net[3].forget_leader()
    assert net[2].leader == net[3].leader == NONE
    for _ in range(6):  # half an election timeout, plus one tick
        net.tick(2)
        net.tick(3)
        net.deliver()
    leaders = [n for n in (2, 3) if net[n].role == Role.LEADER]
    assert len(leaders) == 1 and net[leaders[0]].term == term + 1


def test_forgetting_a_live_leader_disturbs_nothing() -> None:
    net = Net(election_ticks=10)
    net.elect(1)
    term = net[1].term
    net[3].forget_leader()  # a connection closed, but the leader lives
    for _ in range(6):
        net.tick(3)
    net.deliver()  # node 3's pre-vote meets node 2, which still hears from the leader
    assert net[1].role == Role.LEADER and net[1].term == net[2].term == net[3].term == term


def test_without_check_quorum_a_follower_grants_a_pre_vote_despite_its_leader() -> None:
    net = Net(check_quorum=False)
    net.elect(1)
    net.down.add(3)
    net.campaign(3)
    net.down.clear()
    (to2,) = net.take(lambda m: m.frm == 3 and m.to == 2)
    net[2].step(to2)
    (answer,) = net.take(lambda m: m.to == 3 and m.type == MsgType.PREVOTE_RESP)
    assert not answer.reject and net[2].term == net[1].term


def test_leadership_transfer_overrides_the_lease() -> None:
    net = Net()
    net.elect(1)
    net[1].transfer_leadership(2)
    net.deliver()
    assert net[2].role == Role.LEADER and net[1].role == Role.FOLLOWER
    assert net[2].term == 2


def test_transfer_votes_carry_the_transfer_context() -> None:
    net = Net()
    net.elect(1)
    net[1].transfer_leadership(3)
    (timeout,) = net.take(lambda m: m.type == MsgType.TIMEOUT_NOW)
    net[3].step(timeout)
    votes = net.take(lambda m: m.frm == 3)
    assert {m.type for m in votes} == {MsgType.VOTE}
    assert all(m.context == TRANSFER_CONTEXT for m in votes)


def test_leader_steps_down_without_a_quorum_and_drops_pending_reads() -> None:
    net = Net()
    leader = net.elect(1)
    net.down.update({2, 3})
    leader.read_index(b"r1")
    net.flush()
    for _ in range(2 * 10):
        leader.tick()
        if leader.role != Role.LEADER:
            break
    net.flush()
    assert leader.role == Role.FOLLOWER and leader.leader == NONE
    assert net.dropped_reads[1] == [b"r1"]
    assert net.read_states[1] == []


def test_a_lower_term_append_is_answered_so_a_stale_leader_steps_down() -> None:
    net = Net(check_quorum=False)  # no lease: node 3 votes as soon as asked
    old = net.elect(1)
    net.down.add(1)
    net.campaign(2)
    net.deliver()
    assert net[2].role == Role.LEADER and net[2].term > old.term
    net.down.clear()
    old.propose(b"late")
    net.flush()
    net.deliver()
    assert old.role == Role.FOLLOWER and old.term == net[2].term
    net.tick(2)  # the new leader's heartbeat tells it who leads
    net.deliver()
    assert old.leader == 2


def test_a_rejected_pre_vote_with_a_higher_term_makes_the_candidate_follow() -> None:
    net = Net(restored={1: Restored(HardState(term=1))})
    net.campaign(1)
    (prevote,) = net.take(lambda m: m.to == 2)
    net.take()
    answer = Message(MsgType.PREVOTE_RESP, 1, 2, term=5, reject=True)
    net[1].step(answer)
    assert net[1].role == Role.FOLLOWER and net[1].term == 5
    del prevote


def test_granted_pre_votes_never_change_the_term() -> None:
    net = Net()
    net.campaign(1)
    net.take()
    net[1].step(Message(MsgType.PREVOTE_RESP, 1, 2, term=1))
    # That was a majority: node 1 now runs a real election, in term 1.
    assert net[1].role == Role.CANDIDATE and net[1].term == 1


# -- replication ---------------------------------------------------------------


def test_commit_counts_only_entries_of_the_current_term() -> None:
    """Figure 8: an old-term entry on a majority is not committed by counting."""
    net = Net(
        restored={
            1: Restored(HardState(term=2), entries=entries([1, 2])),
            2: Restored(HardState(term=2), entries=entries([1])),
            3: Restored(HardState(term=2), entries=entries([1])),
        },
        pre_vote=False,
    )
    net.campaign(1)
    for vote in net.take(lambda m: m.type == MsgType.VOTE):
        net[vote.to].step(vote)
    net.deliver(lambda m: m.type == MsgType.VOTE_RESP)
    leader = net[1]
    assert leader.role == Role.LEADER and leader.term == 3 and leader.last_index == 3
    net.take()  # the APPENDs are lost
    # Node 2 acknowledges entry 2 (of term 2) but not the NOOP of term 3.
    leader.step(Message(MsgType.APPEND_RESP, 1, 2, term=3, index=2))
    net.flush()
    assert leader.commit == 0
    leader.step(Message(MsgType.APPEND_RESP, 1, 2, term=3, index=3))
    net.flush()
    assert leader.commit == 3
    assert [e.index for e in net.applied[1]] == [1, 2, 3]


def test_the_leader_counts_its_own_entries_only_once_persisted() -> None:
    net = Net(n=1)
    net.campaign(1)
    leader = net[1]
    assert leader.role == Role.LEADER
    assert leader.commit == 1  # the NOOP
    assert leader.propose(b"a")
    rd = leader.ready()
    assert [e.data for e in rd.entries] == [b"a"]
    assert leader.commit == 1  # "a" is not on disk yet
    leader.advance(rd)
    assert leader.commit == leader.last_index
    assert [e.data for e in leader.ready().committed][-1] == b"a"


def test_a_stale_append_never_truncates() -> None:
    node = Raft(cfg(2), Restored(HardState(term=2), entries=entries([1, 1, 2, 2, 2])))
    node.step(Message(MsgType.APPEND, 2, 1, 2, log_term=1, index=2, entries=entries([2], 3)))
    assert node.last_index == 5
    (resp,) = node.ready().messages
    assert not resp.reject and resp.index == 3
    # A duplicate that overlaps the log entirely changes nothing either.
    node.step(Message(MsgType.APPEND, 2, 1, 2, log_term=1, index=1, entries=entries([1, 2, 2], 2)))
    assert node.last_index == 5 and node.term_at(5) == 2


def test_a_real_conflict_truncates_and_the_ready_overwrites_the_tail() -> None:
    node = Raft(cfg(2), Restored(HardState(term=2), entries=entries([1, 1, 2, 2, 2])))
    new = entries([3], 3)
    node.step(Message(MsgType.APPEND, 2, 1, 3, log_term=1, index=2, entries=new, commit=3))
    assert node.last_index == 3 and node.term_at(3) == 3
    rd = node.ready()
    assert rd.entries == list(new)
    assert rd.hard_state == HardState(term=3, vote=NONE, commit=3)
    assert [e.index for e in rd.committed] == [1, 2, 3]


def test_an_append_that_would_rewrite_committed_entries_is_ignored() -> None:
    node = Raft(cfg(2), Restored(HardState(term=2, commit=3), entries=entries([1, 1, 2])))
    # prev matches, but it claims a different entry 3 (already committed): nonsense.
    node.step(Message(MsgType.APPEND, 2, 1, 3, log_term=1, index=2, entries=entries([3], 3)))
    assert node.term_at(3) == 2


def test_fast_backtracking_skips_a_long_divergent_log() -> None:
    leader_log = entries([1] * 10 + [3] * 990)
    follower_log = entries([1] * 10 + [2] * 1990)
    net = Net(
        restored={
            1: Restored(HardState(term=3), entries=leader_log),
            2: Restored(HardState(term=3), entries=follower_log),
            3: Restored(HardState(term=3), entries=leader_log),
        },
        pre_vote=False,
    )
    net.campaign(1)
    net.deliver(lambda m: m.type in (MsgType.VOTE, MsgType.VOTE_RESP))
    assert net[1].role == Role.LEADER
    rejections = 0
    for _ in range(10):
        msgs = net.take(lambda m: m.frm == 1 and m.to == 2 and m.type == MsgType.APPEND)
        if not msgs:
            break
        for m in msgs:
            net[2].step(m)
        for r in net.take(lambda m: m.frm == 2):
            rejections += r.reject
            net[1].step(r)
    assert rejections == 1  # one hint was enough, not ~1990 probes
    assert net[2].last_index == net[1].last_index == 1001
    assert net[2].term_at(11) == 3 and net[2].term_at(1001) == 4
    assert net[1].status()["progress"][2]["match"] == 1001


def test_batching_and_pipelining_limits() -> None:
    net = Net(max_entries_per_msg=2, max_inflight=3, max_bytes_per_msg=250)
    leader = net.elect(1)
    for i in range(20):
        assert leader.propose(b"%03d" % i)
    sent = net.take(lambda m: m.to == 2 and m.type == MsgType.APPEND)
    assert [len(m.entries) for m in sent] == [2, 2, 2]  # max_inflight APPENDs of 2
    assert [m.index for m in sent] == [1, 3, 5]  # previous index: after the NOOP
    net[2].step(sent[0])
    net.deliver(lambda m: m.to == 1 and m.frm == 2)  # one ack frees one slot
    more = net.take(lambda m: m.to == 2 and m.type == MsgType.APPEND)
    assert [(m.index, len(m.entries)) for m in more] == [(7, 2)]
    # Bytes: 100-byte entries, 250 bytes a message: 2 entries each (always at least one).
    net2 = Net(max_bytes_per_msg=250, max_inflight=1)
    lead2 = net2.elect(1)
    for _ in range(5):
        lead2.propose(b"y" * 100)
    (m,) = net2.take(lambda m: m.to == 2 and m.type == MsgType.APPEND)
    assert len(m.entries) == 2


def test_probe_state_sends_one_append_at_a_time() -> None:
    net = Net(max_entries_per_msg=1)
    leader = net.elect(1)
    leader.propose(b"a")
    leader.propose(b"b")
    first = net.take(lambda m: m.to == 2 and m.type == MsgType.APPEND)
    assert len(first) == 2  # REPLICATE: pipelined
    # Follower 2 rejects the second (it lost the first): back to PROBE.
    reject = Message(MsgType.APPEND_RESP, 1, 2, leader.term, index=first[1].index, reject=True)
    reject.reject_hint = 1
    leader.step(reject)
    assert leader.status()["progress"][2]["state"] == "probe"
    net.flush()
    probes = net.take(lambda m: m.to == 2 and m.type == MsgType.APPEND)
    assert len(probes) == 1
    leader.propose(b"c")
    net.flush()
    assert net.take(lambda m: m.to == 2 and m.type == MsgType.APPEND) == []


def test_heartbeats_carry_at_most_what_the_follower_matches() -> None:
    net = Net()
    leader = net.elect(1)
    net.down.add(3)
    for i in range(5):
        leader.propose(b"v%d" % i)
    net.deliver()
    assert leader.commit == 6
    net.down.clear()
    net.tick(1)
    beats = {m.to: m for m in net.take(lambda m: m.type == MsgType.HEARTBEAT)}
    assert beats[2].commit == 6
    assert beats[3].commit == 1  # node 3 only has the NOOP


def test_status_reports_progress_on_the_leader() -> None:
    net = Net()
    leader = net.elect(1)
    st = leader.status()
    assert st["role"] == "leader" and st["leader"] == 1 and st["commit"] == 1
    assert st["progress"][2] == {"match": 1, "next": 2, "state": "replicate"}
    assert "progress" not in net[2].status() and net[2].status()["applied"] == 1


def test_a_lost_append_is_recovered_on_the_next_heartbeat() -> None:
    net = Net()
    leader = net.elect(1)
    leader.propose(b"a")
    net.take(lambda m: m.to == 2 and m.type == MsgType.APPEND)  # lost
    net.deliver(lambda m: m.to != 2)
    for _ in range(3):
        net.tick(1)
        net.deliver()
    assert net[2].last_index == leader.last_index and net[2].commit == leader.commit


# -- reads ---------------------------------------------------------------------


def test_read_index_waits_for_the_noop_and_a_heartbeat_quorum() -> None:
    net = Net()
    net.campaign(1)
    net.deliver(
        lambda m: m.type in (MsgType.PREVOTE, MsgType.PREVOTE_RESP, MsgType.VOTE, MsgType.VOTE_RESP)
    )
    leader = net[1]
    assert leader.role == Role.LEADER and leader.commit == 0
    leader.read_index(b"r1")
    net.flush()
    assert net.read_states[1] == []
    assert not any(m.context for m in net.inflight)  # no heartbeat for it yet
    net.deliver(lambda m: m.type in (MsgType.APPEND, MsgType.APPEND_RESP))
    assert leader.commit == 1
    beats = net.take(lambda m: m.type == MsgType.HEARTBEAT)
    assert {m.context for m in beats} == {b"r1"} and len(beats) == 2
    assert net.read_states[1] == []
    net[2].step(beats[0])
    net.deliver()  # node 2's answer alone makes a majority with the leader
    assert net.read_states[1] == [ReadState(1, b"r1")]


def test_read_index_on_a_follower_goes_through_the_leader() -> None:
    net = Net()
    leader = net.elect(1)
    leader.propose(b"a")
    net.deliver()
    net[3].read_index(b"f1")
    net.deliver()
    assert net.read_states[3] == [ReadState(leader.commit, b"f1")]
    assert net.read_states[1] == []


def test_read_index_without_a_leader_is_dropped() -> None:
    net = Net()
    net[2].read_index(b"x")
    net.flush()
    assert net.dropped_reads[2] == [b"x"]


def test_a_forwarded_read_is_dropped_when_the_follower_loses_its_leader() -> None:
    net = Net()
    net.elect(1)
    net[2].read_index(b"f")
    net.take(lambda m: m.type == MsgType.READ_INDEX)  # lost
    net[2].step(Message(MsgType.VOTE, 2, 3, term=9, log_term=1, index=1, context=TRANSFER_CONTEXT))
    net.flush()
    assert net.dropped_reads[2] == [b"f"]


def test_single_node_reads_are_served_without_heartbeats() -> None:
    net = Net(n=1)
    net.campaign(1)
    net.flush()
    net[1].read_index(b"s")
    net.flush()
    assert net.read_states[1] == [ReadState(1, b"s")]


# -- snapshots and restarts ----------------------------------------------------


def test_install_snapshot_to_a_lagging_follower_after_compaction() -> None:
    net = Net()
    leader = net.elect(1)
    net.down.add(3)
    for i in range(30):
        leader.propose(b"v%d" % i)
    net.deliver()
    assert leader.commit == 31 and net[2].commit == 31
    snap = leader.compact(31, b"state@31", keep=0)
    assert snap is not None and snap.meta.index == 31 and snap.meta.term == leader.term
    assert leader.first_index == 32
    net.down.clear()
    leader.propose(b"after")
    for _ in range(4):
        net.tick(1)
        net.deliver()
    assert net.snapshots[3] == [snap]
    follower = net[3]
    assert follower.first_index == 32 and follower.commit == 32 == leader.commit
    # The NOOP before it was cut off, then the snapshot, then the entry after it.
    assert [(e.index, e.data) for e in net.applied[3]] == [(1, b""), (32, b"after")]
    assert leader.status()["progress"][3]["match"] == 32


def test_a_lost_snapshot_is_sent_again() -> None:
    net = Net()
    leader = net.elect(1)
    net.down.add(3)
    for i in range(5):
        leader.propose(b"v%d" % i)
    net.deliver()
    leader.compact(leader.commit, b"state", keep=0)
    net.down.clear()
    sent: list[tuple[int, Message]] = []
    for tick in range(4 * 10):
        net.tick(1)
        net.deliver(lambda m: m.type != MsgType.SNAPSHOT)
        sent += [(tick, m) for m in net.take(lambda m: m.type == MsgType.SNAPSHOT)]
        if len(sent) == 2:
            break
    assert len(sent) == 2, "the snapshot should be sent again after it was lost"
    assert sent[1][0] - sent[0][0] >= 2 * 10  # not before two election timeouts
    net[3].step(sent[1][1])  # the second one arrives
    net.deliver()
    assert net[3].commit == leader.commit and net.snapshots[3]
    assert leader.status()["progress"][3]["state"] == "replicate"


def test_compaction_keeps_trailing_entries_for_slightly_lagging_followers() -> None:
    net = Net()
    leader = net.elect(1)
    for i in range(10):
        leader.propose(b"v%d" % i)
    net.deliver()
    leader.compact(11, b"s", keep=4)
    assert leader.first_index == 8


def test_compact_refuses_an_index_not_yet_applied() -> None:
    net = Net()
    leader = net.elect(1)
    leader.propose(b"a")
    net.flush()
    with pytest.raises(ValueError, match="applied"):
        leader.compact(leader.last_index, b"")


def test_restart_from_restored_replays_committed_entries() -> None:
    net = Net()
    leader = net.elect(1)
    for i in range(5):
        leader.propose(b"v%d" % i)
    net.deliver()
    snap = net[2].compact(3, b"state@3", keep=0)
    assert snap is not None
    stored = [e for e in net.stored[2] if e.index > 3]
    restarted = Raft(cfg(2), Restored(net.hard[2], snap, tuple(stored)))
    assert (restarted.term, restarted.vote) == (net.hard[2].term, net.hard[2].vote)
    assert restarted.commit == 6 and restarted.applied == 3
    assert restarted.role == Role.FOLLOWER and restarted.leader == NONE
    rd = restarted.ready()
    assert [e.index for e in rd.committed] == [4, 5, 6]
    assert rd.entries == [] and rd.snapshot is None


def test_restored_entries_must_follow_the_snapshot() -> None:
    with pytest.raises(ValueError, match="follow"):
        Raft(cfg(1), Restored(entries=entries([1, 1], start=5)))


# -- proposals -----------------------------------------------------------------


def test_proposals_without_a_leader_are_refused() -> None:
    node = Raft(cfg(2))
    assert node.propose(b"x") is False
    assert not node.has_ready()


def test_a_forwarded_proposal_reaching_a_leaderless_node_is_dropped() -> None:
    node = Raft(cfg(2))
    node.step(Message(MsgType.PROPOSE, 2, 1, 0, entries=(Entry(0, 0, data=b"p"),)))
    assert node.ready().dropped == [b"p"]


def test_follower_forwards_proposals_to_the_leader_batched() -> None:
    net = Net()
    leader = net.elect(1)
    assert net[2].propose(b"a") and net[2].propose(b"b")
    (fwd,) = net.take(lambda m: m.type == MsgType.PROPOSE)
    assert fwd.to == 1 and [e.data for e in fwd.entries] == [b"a", b"b"]
    leader.step(fwd)
    net.deliver()
    assert [e.data for e in net.applied[3]][-2:] == [b"a", b"b"]


def test_proposals_buffered_for_a_lost_leader_are_dropped() -> None:
    net = Net()
    net.elect(1)
    assert net[2].propose(b"a")
    net[2].step(Message(MsgType.VOTE, 2, 3, term=9, log_term=1, index=1, context=TRANSFER_CONTEXT))
    net.flush()
    assert net.dropped[2] == [b"a"]
    assert net.take(lambda m: m.type == MsgType.PROPOSE) == []


def test_proposals_during_a_leadership_transfer_are_refused() -> None:
    net = Net()
    leader = net.elect(1)
    net.down.add(2)
    leader.propose(b"a")
    net.deliver()
    leader.transfer_leadership(2)
    assert leader.propose(b"b") is False


# -- robustness ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_odd_messages_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    net = Net()
    net.elect(1)
    for _ in range(3000):
        to = rng.randint(1, 3)
        kind = rng.choice(list(MsgType))
        start = rng.randint(0, 8)
        ents = tuple(
            Entry(rng.randint(0, 4), start + i, EntryType(rng.randint(0, 1)), b"z")
            for i in range(rng.randint(0, 3))
        )
        m = Message(
            kind,
            to,
            rng.randint(0, 4),
            rng.randint(0, 4),
            log_term=rng.randint(0, 4),
            index=rng.randint(0, 10),
            entries=ents,
            commit=rng.randint(0, 10),
            reject=rng.random() < 0.5,
            reject_hint=rng.randint(0, 10),
            hint_term=rng.randint(0, 4),
            context=rng.choice([b"", b"c1", TRANSFER_CONTEXT]),
        )
        if kind == MsgType.SNAPSHOT and rng.random() < 0.8:
            meta = SnapshotMeta(rng.randint(0, 12), rng.randint(0, 4), (1, 2, 3))
            m.snapshot = Snapshot(meta, b"junk")
        try:
            net[to].step(m)
            if rng.random() < 0.2:
                net[to].tick()
            net.flush()
        except Exception as e:  # pragma: no cover - the failure message matters
            raise AssertionError(f"seed {seed}: step({m}) raised {e!r}") from e
        net.inflight.clear()
