"""The Raft state machine: no I/O, no clock, no threads (modelled on etcd-io/raft).

The driver feeds it ticks, messages, proposals and read requests, and drains
what it must do from ``ready()``; see ``store.raft.types`` for that contract.
"""

from __future__ import annotations

import random
from typing import Any

from store import failpoints as fp
from store.raft.log import REFUSED, RaftLog
from store.raft.progress import Progress, ProgressState
from store.raft.read_only import ReadOnly
from store.raft.types import (
    NONE,
    Config,
    Entry,
    EntryType,
    HardState,
    Message,
    MsgType,
    ReadState,
    Ready,
    Restored,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)

# The context of the (pre)votes of an election started by TIMEOUT_NOW: such
# votes are granted even by nodes that still hear from the current leader.
TRANSFER_CONTEXT = b"raft:transfer"

# After compact(), entries this far behind the snapshot stay in the log, so
# that a follower lagging a little is caught up from the log, not a snapshot.
KEEP_ENTRIES = 2048

_APPEND, _HEARTBEAT, _SNAPSHOT = MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT
_VOTE, _PREVOTE = MsgType.VOTE, MsgType.PREVOTE
_FROM_LEADER = frozenset((_APPEND, _HEARTBEAT, _SNAPSHOT))
_REPLICATE, _SNAPSHOTTING = ProgressState.REPLICATE, ProgressState.SNAPSHOT
_FRESH = Restored()


class Raft:
    """One node's Raft state machine.

    Batching: proposals and read requests made between two Readys go out
    together when ``ready()`` is called (one APPEND per follower, one heartbeat
    round for all reads, one PROPOSE to the leader).
    """

    __slots__ = (
        "_applied",
        "_cfg",
        "_dropped",
        "_dropped_reads",
        "_election_elapsed",
        "_forward",
        "_forward_to",
        "_forwarded_reads",
        "_heartbeat_elapsed",
        "_id",
        "_leader",
        "_leader_ticks",
        "_log",
        "_msgs",
        "_need_append",
        "_need_heartbeat",
        "_others",
        "_peers",
        "_pending_reads",
        "_pending_snapshot",
        "_prev_hard",
        "_prev_soft",
        "_prs",
        "_quorum",
        "_randomized_timeout",
        "_read_only",
        "_read_states",
        "_rng",
        "_role",
        "_snapshot",
        "_term",
        "_transferee",
        "_vote",
        "_votes",
    )

    def __init__(self, config: Config, restored: Restored = _FRESH) -> None:
        peers = tuple(sorted(set(config.peers)))
        if config.id == NONE or config.id not in peers:
            raise ValueError(f"node {config.id} is not among the peers {peers}")
        if config.election_ticks < 1 or config.heartbeat_ticks < 1:
            raise ValueError("election_ticks and heartbeat_ticks must be positive")
        self._cfg = config
        self._id = config.id
        self._peers = peers
        self._others = tuple(p for p in peers if p != config.id)
        self._quorum = len(peers) // 2 + 1
        self._rng = random.Random(config.seed)

        hs, snap = restored.hard_state, restored.snapshot
        snap_index, snap_term = (snap.meta.index, snap.meta.term) if snap else (0, 0)
        ents = restored.entries
        if ents and (ents[0].index != snap_index + 1 or ents[-1].index != snap_index + len(ents)):
            raise ValueError(f"restored entries do not follow the snapshot at {snap_index}")
        self._log = log = RaftLog(snap_index, snap_term, ents)
        commit = max(hs.commit, snap_index)
        if commit > log.last_index:
            raise ValueError(f"restored commit {commit} is past the last entry {log.last_index}")
        log.committed = commit
        self._applied = snap_index
        self._snapshot: Snapshot | None = snap
        self._pending_snapshot: Snapshot | None = None

        self._term = hs.term
        self._vote = hs.vote
        if fp.ACTIVE is not None and "forget-vote-on-restart" in fp.ACTIVE:
            self._vote = NONE  # planted bug: the vote is not read back
        self._leader = NONE
        self._role = Role.FOLLOWER
        self._prev_hard = hs
        self._prev_soft = SoftState()
        self._prs: dict[int, Progress] = {p: Progress(log.last_index + 1) for p in peers}
        self._votes: dict[int, bool] = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = 0
        self._leader_ticks = 0
        self._transferee = NONE

        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._dropped: list[bytes] = []
        self._dropped_reads: list[bytes] = []
        self._read_only = ReadOnly()
        self._pending_reads: list[tuple[bytes, int]] = []  # until the NOOP commits
        self._forward: list[Entry] = []  # proposals to forward in the next Ready
        self._forward_to = NONE
        # Read contexts sent to the leader and not answered yet; a new leader or
        # term means no answer will come, so they are dropped then.
        self._forwarded_reads: dict[bytes, None] = {}
        self._need_append = False  # new entries or commit: broadcast APPENDs
        self._need_heartbeat = False
        self._become_follower(self._term, NONE)

    # -- read-only properties ------------------------------------------------

    @property
    def id(self) -> int:
        return self._id

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> int:
        return self._vote

    @property
    def leader(self) -> int:
        return self._leader

    @property
    def role(self) -> Role:
        return self._role

    @property
    def commit(self) -> int:
        return self._log.committed

    @property
    def applied(self) -> int:
        return self._applied

    @property
    def last_index(self) -> int:
        return self._log.last_index

    @property
    def first_index(self) -> int:
        return self._log.first_index

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index`` in this node's log (None if not there)."""
        return self._log.term(index)

    def status(self) -> dict[str, Any]:
        log = self._log
        out: dict[str, Any] = {
            "id": self._id,
            "term": self._term,
            "vote": self._vote,
            "leader": self._leader,
            "role": self._role.name.lower(),
            "commit": log.committed,
            "applied": self._applied,
            "first_index": log.first_index,
            "last_index": log.last_index,
        }
        if self._role == Role.LEADER:
            out["progress"] = {
                p: {"match": pr.match, "next": pr.next, "state": pr.state.name.lower()}
                for p, pr in self._prs.items()
            }
        return out

    # -- inputs --------------------------------------------------------------

    def tick(self) -> None:
        if self._role == Role.LEADER:
            self._tick_leader()
            return
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout:
            self._election_elapsed = 0
            self._hup(transfer=False)

    def propose(self, data: bytes) -> bool:
        """Append (leader) or forward (follower) a command; False if nobody can take it."""
        if self._role == Role.LEADER:
            if self._transferee != NONE:
                return False
            self._append(EntryType.NORMAL, data)
            return True
        if self._leader == NONE:
            return False
        self._forward.append(Entry(0, 0, EntryType.NORMAL, data))
        self._forward_to = self._leader
        return True

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read index; answered by a ReadState with ``context``
        or, when it cannot be served, by ``context`` in ``Ready.dropped_reads``."""
        if not context:
            raise ValueError("a read-index context must not be empty")
        if self._role == Role.LEADER:
            self._leader_read(context, self._id)
        elif self._leader != NONE:
            self._forwarded_reads[context] = None
            self._msgs.append(
                Message(MsgType.READ_INDEX, self._leader, self._id, 0, context=context)
            )
        else:
            self._dropped_reads.append(context)

    def forget_leader(self) -> None:
        """The driver has strong evidence that this follower's leader is gone (its
        process closed the connection): forget it, and campaign after a random
        part of half an election timeout instead of a whole one.

        As etcd-io/raft's ForgetLeader: a follower without a leader grants
        pre-votes at once, so when a majority saw the leader go, an election
        happens about as soon as they all noticed. Safety never rests on timing;
        if the leader is in fact alive, the pre-vote fails and nothing changes.
        """
        if self._role != Role.FOLLOWER or self._leader == NONE:
            return
        self._leader = NONE
        if self._forwarded_reads:
            self._dropped_reads.extend(self._forwarded_reads)
            self._forwarded_reads.clear()
        soon = 1 + self._rng.randrange(max(1, self._cfg.election_ticks // 2))
        self._election_elapsed = max(self._election_elapsed, self._randomized_timeout - soon)

    def advance_election(self) -> None:
        """etcd's --initial-election-tick-advance: a member that has just started
        and knows no leader counts all but one tick of an election timeout as
        elapsed, so it campaigns after [1, election] ticks (its randomised timeout
        less election - 1) rather than [election, 2 election). A cluster restarted
        all at once elects its leader about an election timeout sooner. Only
        liveness depends on it: with a leader alive, the pre-vote fails.
        """
        if self._role == Role.LEADER or self._leader != NONE:
            return
        self._election_elapsed = max(self._election_elapsed, self._cfg.election_ticks - 1)

    def transfer_leadership(self, to: int) -> None:
        if self._role != Role.LEADER or to == self._id or to not in self._prs:
            return
        if self._transferee == to:
            return
        self._transferee = to
        self._election_elapsed = 0  # the transfer is abandoned after an election timeout
        if self._prs[to].match == self._log.last_index:
            self._send_timeout_now(to)
        else:
            self._send_append(to, True)

    def step(self, m: Message) -> None:
        """Take a message from a peer. Stale, duplicate, reordered or nonsensical
        messages are ignored (or answered) but never raise."""
        frm = m.frm
        if frm == self._id or frm not in self._prs or m.to != self._id:
            return
        t = m.type
        if t == MsgType.PROPOSE:
            self._step_propose(m)
            return
        if t == MsgType.READ_INDEX:
            if self._role == Role.LEADER and m.context:
                self._leader_read(m.context, frm)
            return
        if m.term > self._term:
            if t in (_VOTE, _PREVOTE):
                in_lease = (
                    self._cfg.check_quorum
                    and self._leader != NONE
                    and self._election_elapsed < self._cfg.election_ticks
                )
                if in_lease and m.context != TRANSFER_CONTEXT:
                    return  # we still hear from a leader: no election is needed
            if t == _PREVOTE or (t == MsgType.PREVOTE_RESP and not m.reject):
                pass  # pre-votes never change terms
            elif t in _FROM_LEADER:
                self._become_follower(m.term, frm)
            else:
                self._become_follower(m.term, NONE)
        elif m.term < self._term:
            if t in (_APPEND, _HEARTBEAT) and (
                    fp.ACTIVE is not None and "append-from-stale-term" in fp.ACTIVE):
                # Planted bug: the deposed leader is answered as if it still led: its log
                # wins and its heartbeats (so its read index) are confirmed.
                if t == _APPEND:
                    self._stale_append(m)
                else:
                    self._msgs.append(Message(MsgType.HEARTBEAT_RESP, m.frm, self._id, m.term,
                                              context=m.context))
                return
            if t in (_APPEND, _HEARTBEAT):
                # A stale leader: our term in an answer makes it step down.
                self._send(MsgType.APPEND_RESP, frm, self._term)
            elif t == _PREVOTE:
                self._send(MsgType.PREVOTE_RESP, frm, self._term, reject=True)
            return
        if t in (_VOTE, _PREVOTE):
            self._step_vote(m)
        elif self._role == Role.LEADER:
            self._step_leader(m)
        elif self._role == Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    # -- output --------------------------------------------------------------

    def has_ready(self) -> bool:
        log = self._log
        return bool(
            self._msgs
            or log.has_unstable()
            or log.has_next_committed()
            or self._need_append
            or self._need_heartbeat
            or self._forward
            or self._read_states
            or self._dropped
            or self._dropped_reads
            or self._pending_snapshot is not None
            or self._prev_soft.leader != self._leader
            or self._prev_soft.role != self._role
            or self._prev_hard.term != self._term
            or self._prev_hard.vote != self._vote
            or self._prev_hard.commit != log.committed
            or (fp.ACTIVE is not None and "apply-before-commit" in fp.ACTIVE
                and self._role != Role.LEADER and log.persisted > log.applying)
        )

    def ready(self) -> Ready:
        self._flush()
        log = self._log
        rd = Ready()
        soft = SoftState(self._leader, self._role)
        if soft != self._prev_soft:
            rd.soft_state = self._prev_soft = soft
        hard = HardState(self._term, self._vote, log.committed)
        if hard != self._prev_hard:
            rd.hard_state = self._prev_hard = hard
        rd.snapshot, self._pending_snapshot = self._pending_snapshot, None
        rd.entries = log.unstable_entries()
        rd.messages, self._msgs = self._msgs, []
        rd.committed = log.next_committed()
        if fp.ACTIVE is not None and "apply-before-commit" in fp.ACTIVE and (
                self._role != Role.LEADER):
            # Planted bug: a member that does not lead applies what is on its disk,
            # committed or not (a leader's own entries wait for their commit).
            rd.committed += log.next_persisted()
        if self._read_states:
            rd.read_states, self._read_states = self._read_states, []
        if self._dropped:
            rd.dropped, self._dropped = self._dropped, []
        if self._dropped_reads:
            rd.dropped_reads, self._dropped_reads = self._dropped_reads, []
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied ``rd``."""
        log = self._log
        if rd.snapshot is not None:
            self._applied = max(self._applied, rd.snapshot.meta.index)
            if log.term(rd.snapshot.meta.index) == rd.snapshot.meta.term:
                log.persisted = max(log.persisted, rd.snapshot.meta.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed:
            self._applied = max(self._applied, rd.committed[-1].index)
        if self._role == Role.LEADER and self._prs[self._id].maybe_update(log.persisted):
            self._maybe_commit()

    def compact(self, index: int, data: bytes, *, keep: int = KEEP_ENTRIES) -> Snapshot | None:
        """Take the driver's state machine at applied ``index`` (``data``) as the
        latest snapshot, and drop log entries up to ``index - keep``.

        Returns the snapshot for the driver to persist, or None when the core
        already holds a newer one (a snapshot from the leader arrived meanwhile;
        it comes out in the next Ready).
        """
        log = self._log
        if fp.ACTIVE is not None and "apply-before-commit" in fp.ACTIVE and (
                index > min(log.committed, log.applying)):
            # Planted bug `apply-before-commit`: the state applied may hold entries that
            # never commit, or the log was replaced by a leader's snapshot below it; no
            # snapshot of it, so that no log is compacted past its commit index.
            return None
        if index > log.applying:
            raise ValueError(f"cannot snapshot at {index}: only {log.applying} was applied")
        if self._snapshot is not None and index < self._snapshot.meta.index:
            return None
        term = log.term(index)
        if term is None:
            return None  # the log was replaced by a newer snapshot
        snap = Snapshot(SnapshotMeta(index, term, self._peers), data)
        self._snapshot = snap
        upto = min(index - max(keep, 0), log.persisted)
        if upto >= log.first_index:
            log.compact(upto)
        return snap

    # -- roles ---------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = NONE
        if self._role == Role.LEADER:
            for req in self._read_only.reset():
                if req.frm == self._id:
                    self._dropped_reads.append(req.context)
        for ctx, frm in self._pending_reads:
            if frm == self._id:
                self._dropped_reads.append(ctx)
        self._pending_reads.clear()
        if self._forwarded_reads:
            self._dropped_reads.extend(self._forwarded_reads)
            self._forwarded_reads.clear()
        if self._forward:
            self._dropped.extend(e.data for e in self._forward)
            self._forward.clear()
        self._leader = NONE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        election = self._cfg.election_ticks
        self._randomized_timeout = election + self._rng.randrange(election)
        self._transferee = NONE
        self._votes.clear()
        self._need_append = False
        self._need_heartbeat = False

    def _become_follower(self, term: int, leader: int) -> None:
        self._reset(term)
        self._leader = leader
        self._role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # Neither the term nor the vote changes: that is the point of pre-vote.
        self._reset(self._term)
        self._role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._vote = self._id
        self._role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader = self._id
        self._leader_ticks = 0
        log = self._log
        nxt = log.last_index + 1
        self._prs = prs = {p: Progress(nxt) for p in self._peers}
        me = prs[self._id]
        me.match = log.persisted  # our own log counts only once it is on disk
        me.become_replicate()
        me.recent_active = True
        self._append(EntryType.NOOP, b"")

    def _hup(self, transfer: bool) -> None:
        if self._role == Role.LEADER:
            return
        if self._cfg.pre_vote and not transfer:
            self._campaign(pre=True, transfer=False)
        else:
            self._campaign(pre=False, transfer=transfer)

    def _campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self._become_pre_candidate()
            kind, term = _PREVOTE, self._term + 1
        else:
            self._become_candidate()
            kind, term = _VOTE, self._term
        self._votes[self._id] = True
        if self._quorum == 1:
            self._won(pre)
            return
        log = self._log
        ctx = TRANSFER_CONTEXT if transfer else b""
        last_index, last_term = log.last_index, log.last_term
        for p in self._others:
            self._msgs.append(Message(kind, p, self._id, term, last_term, last_index, context=ctx))

    def _won(self, pre: bool) -> None:
        if pre:
            self._campaign(pre=False, transfer=False)
        else:
            self._become_leader()

    # -- voting --------------------------------------------------------------

    def _may_vote_for(self, m: Message) -> bool:
        """Whether this node may grant ``m``'s (pre)vote, its log aside."""
        return (
            self._vote == m.frm
            or (self._vote == NONE and self._leader == NONE)
            or (m.type == _PREVOTE and m.term > self._term)
        )

    def _step_vote(self, m: Message) -> None:
        resp = MsgType.VOTE_RESP if m.type == _VOTE else MsgType.PREVOTE_RESP
        up_to_date = self._log.is_up_to_date(m.index, m.log_term) or (
            fp.ACTIVE is not None and "vote-no-log-check" in fp.ACTIVE)  # planted bug
        if self._may_vote_for(m) and up_to_date:
            # A granted pre-vote carries the proposed term, so the pre-candidate
            # can tell it from stale answers.
            self._send(resp, m.frm, m.term)
            if m.type == _VOTE:
                self._election_elapsed = 0
                self._vote = m.frm
        else:
            self._send(resp, m.frm, self._term, reject=True)

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        if t in _FROM_LEADER:
            self._become_follower(m.term, m.frm)
            self._step_follower(m)
            return
        if t == MsgType.READ_INDEX_RESP:
            self._read_index_resp(m)
            return
        pre = self._role == Role.PRE_CANDIDATE
        if t != (MsgType.PREVOTE_RESP if pre else MsgType.VOTE_RESP):
            return
        if pre and not m.reject and m.term != self._term + 1:
            return
        self._votes.setdefault(m.frm, not m.reject)
        granted = sum(self._votes.values())
        if granted >= self._quorum:
            self._won(pre)
        elif len(self._votes) - granted > len(self._peers) - self._quorum:
            self._become_follower(self._term, NONE)

    # -- follower ------------------------------------------------------------

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t in _FROM_LEADER:
            self._election_elapsed = 0
            self._leader = m.frm
            if t == _APPEND:
                self._handle_append(m)
            elif t == _HEARTBEAT:
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif t == MsgType.READ_INDEX_RESP:
            self._read_index_resp(m)
        elif t == MsgType.TIMEOUT_NOW:
            self._hup(transfer=True)

    def _read_index_resp(self, m: Message) -> None:
        if m.context in self._forwarded_reads:
            del self._forwarded_reads[m.context]
            self._read_states.append(ReadState(m.index, m.context))

    def _handle_append(self, m: Message) -> None:
        log = self._log
        if m.index < log.committed and (
                fp.ACTIVE is None or "vote-no-log-check" not in fp.ACTIVE):
            # Planted bug `vote-no-log-check` skips this guard too: a textbook follower
            # matches the previous entry and truncates, whatever it committed.
            self._send(MsgType.APPEND_RESP, m.frm, self._term, index=log.committed)
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is None:
            hint, hint_term = log.find_conflict_by_term(min(m.index, log.last_index), m.log_term)
            self._msgs.append(
                Message(
                    MsgType.APPEND_RESP,
                    m.frm,
                    self._id,
                    self._term,
                    index=m.index,
                    reject=True,
                    reject_hint=hint,
                    hint_term=hint_term,
                )
            )
        elif last_new != REFUSED:
            self._send(MsgType.APPEND_RESP, m.frm, self._term, index=last_new)

    def _stale_append(self, m: Message) -> None:
        """Planted bug `append-from-stale-term`: answer a deposed leader's APPEND as if
        its term were ours, and let its entries overwrite ours, committed ones too
        (as far as our commit index allows the log to end)."""
        log = self._log
        if log.term(m.index) != m.log_term:
            hint, hint_term = log.find_conflict_by_term(min(m.index, log.last_index), m.log_term)
            self._msgs.append(Message(MsgType.APPEND_RESP, m.frm, self._id, m.term,
                                      index=m.index, reject=True, reject_hint=hint,
                                      hint_term=hint_term))
            return
        last_new = m.index + len(m.entries)
        first = next((i for i, e in enumerate(m.entries) if log.term(e.index) != e.term), None)
        if first is not None and last_new >= log.committed:
            log.truncate_and_append(m.entries[first:])
        self._send(MsgType.APPEND_RESP, m.frm, m.term, index=last_new)

    def _handle_heartbeat(self, m: Message) -> None:
        log = self._log
        if log.committed < m.commit <= log.last_index:
            log.committed = m.commit
        self._msgs.append(
            Message(MsgType.HEARTBEAT_RESP, m.frm, self._id, self._term, context=m.context)
        )

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        if snap is None:
            return
        log = self._log
        index, term = snap.meta.index, snap.meta.term
        if index > log.committed:
            if log.term(index) == term:
                # We have the snapshot's last entry, hence everything before it.
                log.committed = index
            else:
                log.restore(index, term)
                self._snapshot = self._pending_snapshot = snap
        self._send(MsgType.APPEND_RESP, m.frm, self._term, index=log.committed)

    # -- leader --------------------------------------------------------------

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        self._leader_ticks += 1
        if self._election_elapsed >= self._cfg.election_ticks:
            self._election_elapsed = 0
            check_quorum = self._cfg.check_quorum and not (
                fp.ACTIVE is not None and "lease-read-no-check-quorum" in fp.ACTIVE)
            if check_quorum and not self._quorum_active():
                self._become_follower(self._term, NONE)
                return
            self._transferee = NONE  # a transfer that has not happened by now failed
        if self._heartbeat_elapsed >= self._cfg.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._need_heartbeat = True

    def _quorum_active(self) -> bool:
        active = 0
        for p, pr in self._prs.items():
            if pr.recent_active or p == self._id:
                active += 1
            pr.recent_active = p == self._id
        return active >= self._quorum

    def _append(self, kind: EntryType, data: bytes) -> None:
        log = self._log
        log.append(Entry(self._term, log.last_index + 1, kind, data))
        self._need_append = True

    def _step_propose(self, m: Message) -> None:
        if self._role == Role.LEADER:
            if self._transferee != NONE:
                self._dropped.extend(e.data for e in m.entries)
                return
            for e in m.entries:
                self._append(EntryType.NORMAL, e.data)
        elif self._leader not in (NONE, m.frm):
            self._msgs.append(
                Message(MsgType.PROPOSE, self._leader, self._id, 0, entries=m.entries)
            )
        else:
            self._dropped.extend(e.data for e in m.entries)

    def _step_leader(self, m: Message) -> None:
        t = m.type
        pr = self._prs[m.frm]
        if t == MsgType.APPEND_RESP:
            pr.recent_active = True
            self._handle_append_resp(m, pr)
        elif t == MsgType.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state == _REPLICATE and len(pr.inflights) >= self._cfg.max_inflight:
                pr.inflights.popleft()  # an APPEND may have been lost: let one more through
            elif (
                pr.state == _SNAPSHOTTING
                and self._leader_ticks - pr.snapshot_sent_at >= 2 * self._cfg.election_ticks
            ):
                pr.become_probe()  # the snapshot was probably lost: find out again
            if pr.match < self._log.last_index:
                self._send_append(m.frm, True)
            if m.context and self._read_only.ack(m.context, m.frm) >= self._quorum:
                for req in self._read_only.release(m.context):
                    self._serve_read(req.context, req.frm, req.index)

    def _handle_append_resp(self, m: Message, pr: Progress) -> None:
        frm = m.frm
        if m.reject:
            hint = m.reject_hint
            if m.hint_term > 0:
                hint, _ = self._log.find_conflict_by_term(hint, m.hint_term)
            if pr.maybe_decrease_to(m.index, hint):
                if pr.state == _REPLICATE:
                    pr.become_probe()
                self._send_append(frm, True)
            return
        if m.index > self._log.last_index:
            return  # acknowledges entries we never had: not from a sane peer
        old_paused = pr.is_paused(self._cfg.max_inflight)
        if pr.maybe_update(m.index) or (pr.match == m.index and pr.state == ProgressState.PROBE):
            state = pr.state
            if state == ProgressState.PROBE:
                pr.become_replicate()
            elif state == _SNAPSHOTTING and pr.match + 1 >= self._log.first_index:
                pr.become_probe()
                pr.become_replicate()
            elif state == _REPLICATE:
                pr.free_to(m.index)
            # A new commit goes to every follower with the next Ready; otherwise a
            # follower that was paused may need an APPEND now.
            if not self._maybe_commit() and old_paused:
                self._send_append(frm, True)
            while self._send_append(frm, False):
                pass
            if frm == self._transferee and pr.match == self._log.last_index:
                self._send_timeout_now(frm)

    def _maybe_commit(self) -> bool:
        """Commit what a majority has, if it is of this term (the Figure 8 rule)."""
        matches = sorted((pr.match for pr in self._prs.values()), reverse=True)
        index = matches[self._quorum - 1]
        if fp.ACTIVE is not None and "commit-own-match" in fp.ACTIVE:
            index = self._prs[self._id].match  # planted bug: our own disk is a quorum
        log = self._log
        if index <= log.committed or log.term(index) != self._term:
            return False
        log.committed = index
        self._need_append = True
        if self._pending_reads:
            pending, self._pending_reads = self._pending_reads, []
            for ctx, frm in pending:
                self._leader_read(ctx, frm)
        return True

    def _flush(self) -> None:
        """Send what was batched since the last Ready."""
        if self._role == Role.LEADER:
            if self._need_append:
                self._need_append = False
                for p in self._others:
                    if self._send_append(p, True):
                        while self._send_append(p, False):
                            pass
            if self._need_heartbeat:
                self._need_heartbeat = False
                self._broadcast_heartbeat()
        if self._forward:
            entries = tuple(self._forward)
            self._forward.clear()
            self._msgs.append(
                Message(MsgType.PROPOSE, self._forward_to, self._id, 0, entries=entries)
            )

    def _send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send ``to`` what it lacks (APPEND, or SNAPSHOT if compacted); False if nothing."""
        pr = self._prs[to]
        cfg = self._cfg
        if pr.is_paused(cfg.max_inflight):
            return False
        log = self._log
        nxt = pr.next
        prev_term = log.term(nxt - 1)
        if prev_term is None or nxt < log.first_index:
            return self._send_snapshot(to, pr)
        last = log.last_index
        if nxt <= last:
            ents = log.slice(nxt, last, cfg.max_entries_per_msg, cfg.max_bytes_per_msg)
        elif send_if_empty:
            ents = []
        else:
            return False
        self._msgs.append(
            Message(
                _APPEND,
                to,
                self._id,
                self._term,
                prev_term,
                nxt - 1,
                tuple(ents),
                min(log.committed, nxt - 1 + len(ents)),
            )
        )
        pr.sent_append(nxt - 1 + len(ents), len(ents))
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        snap = self._snapshot
        if not pr.recent_active or snap is None:
            return False
        self._msgs.append(Message(_SNAPSHOT, to, self._id, self._term, snapshot=snap))
        pr.become_snapshot(snap.meta.index, self._leader_ticks)
        return True

    def _broadcast_heartbeat(self) -> None:
        ctx = self._read_only.last_context()
        committed = self._log.committed
        for p in self._others:
            commit = min(self._prs[p].match, committed)
            self._msgs.append(
                Message(_HEARTBEAT, p, self._id, self._term, commit=commit, context=ctx)
            )

    def _send_timeout_now(self, to: int) -> None:
        self._send(MsgType.TIMEOUT_NOW, to, self._term)

    def _leader_read(self, context: bytes, frm: int) -> None:
        log = self._log
        if log.term(log.committed) != self._term:
            self._pending_reads.append((context, frm))  # wait for our NOOP to commit
        elif self._quorum == 1 or (
                fp.ACTIVE is not None and "lease-read-no-check-quorum" in fp.ACTIVE):
            self._serve_read(context, frm, log.committed)  # (planted bug: a lease read)
        elif self._read_only.add(context, log.committed, frm, self._id):
            self._need_heartbeat = True

    def _serve_read(self, context: bytes, frm: int, index: int) -> None:
        if frm == self._id:
            self._read_states.append(ReadState(index, context))
        else:
            self._msgs.append(
                Message(
                    MsgType.READ_INDEX_RESP, frm, self._id, self._term, index=index, context=context
                )
            )

    def _send(
        self, kind: MsgType, to: int, term: int, *, index: int = 0, reject: bool = False
    ) -> None:
        self._msgs.append(Message(kind, to, self._id, term, index=index, reject=reject))
