"""The values that go in and out of the Raft core.

The core (``store.raft.core.Raft``) never touches a socket, a file, a clock or a
thread. The driver (the server, or the deterministic simulator) feeds it
``tick()``, ``step(Message)``, ``propose(data)`` and ``read_index(ctx)``, and
drains ``ready()``:

1. persist ``ready.snapshot`` (if any), then ``ready.entries`` (an append that may
   overwrite the stored tail from ``entries[0].index`` on), then
   ``ready.hard_state`` (if any), and fsync once;
2. only then send ``ready.messages``; except that a leader may send its APPEND,
   HEARTBEAT and SNAPSHOT messages before its own fsync, writing its log in
   parallel with its followers (Raft thesis §10.2.1; etcd's server does the same
   with etcd-io/raft), because the core counts the leader's own log toward a
   quorum only once ``advance`` reports it persisted;
3. apply ``ready.committed`` in order (and restore ``ready.snapshot`` first, if
   any), serve ``ready.read_states`` once the applied index reaches their index;
   committed entries already on this node's disk may be applied before step 1;
4. call ``advance(ready)``.

``store.raft.plan.plan_ready`` is that order as a pure function; both drivers,
the node and the simulator, follow it.

At most one Ready is in flight: the driver does not call ``ready()`` again
before ``advance()``. Everything stepped meanwhile lands in the next Ready, which
is what gives group commit (many entries, one fsync).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

NONE = 0  # "no node": node ids are positive integers


class EntryType(IntEnum):
    NORMAL = 0  # data is an opaque client command
    NOOP = 1  # appended by every new leader; data is empty


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    voters: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta
    data: bytes  # the state machine, serialised by the driver


class MsgType(IntEnum):
    PROPOSE = 1  # follower -> leader: entries (term 0 = local, not term-checked)
    PREVOTE = 2
    PREVOTE_RESP = 3
    VOTE = 4
    VOTE_RESP = 5
    APPEND = 6
    APPEND_RESP = 7
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    SNAPSHOT = 10  # InstallSnapshot; answered with APPEND_RESP
    READ_INDEX = 11  # follower -> leader, context in ``context``
    READ_INDEX_RESP = 12  # leader -> follower, index in ``index``
    TIMEOUT_NOW = 13  # leadership transfer: start an election now


@dataclass(slots=True)
class Message:
    type: MsgType
    to: int
    frm: int
    term: int
    log_term: int = 0  # APPEND: prev log term; (PRE)VOTE: candidate's last log term
    index: int = 0  # APPEND: prev log index; (PRE)VOTE: last log index; *_RESP: match / hint
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0  # APPEND_RESP reject: follower's last index (fast backtracking)
    hint_term: int = 0  # APPEND_RESP reject: term of the entry at reject_hint
    context: bytes = b""  # HEARTBEAT(_RESP)/READ_INDEX(_RESP): read-index context
    snapshot: Snapshot | None = None


class Role(IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


@dataclass(frozen=True, slots=True)
class SoftState:
    leader: int = NONE
    role: Role = Role.FOLLOWER


@dataclass(frozen=True, slots=True)
class ReadState:
    index: int  # serve the read once applied >= index
    context: bytes


@dataclass(slots=True)
class Ready:
    soft_state: SoftState | None = None  # set when leader or role changed
    hard_state: HardState | None = None  # set when it changed: persist
    snapshot: Snapshot | None = None  # received InstallSnapshot: persist and restore
    entries: list[Entry] = field(default_factory=list)  # persist (may overwrite tail)
    messages: list[Message] = field(default_factory=list)  # send after persisting (see 2.)
    committed: list[Entry] = field(default_factory=list)  # apply in order
    read_states: list[ReadState] = field(default_factory=list)
    # Proposals the core could not take (no leader known, or leadership lost
    # before they were appended), by their data; the driver fails their waiters.
    dropped: list[bytes] = field(default_factory=list)
    # Read-index contexts that cannot be served (no leader, leadership lost).
    dropped_reads: list[bytes] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.soft_state
            or self.hard_state
            or self.snapshot
            or self.entries
            or self.messages
            or self.committed
            or self.read_states
            or self.dropped
            or self.dropped_reads
        )


@dataclass(frozen=True, slots=True)
class Config:
    id: int
    peers: tuple[int, ...]  # all voters, including id
    election_ticks: int = 10  # an election timeout, in ticks (randomised in [e, 2e))
    heartbeat_ticks: int = 1
    max_entries_per_msg: int = 4096
    max_bytes_per_msg: int = 4 << 20
    max_inflight: int = 256  # pipelined APPENDs per follower before waiting for acks
    pre_vote: bool = True
    check_quorum: bool = True
    seed: int = 0  # the core's own random generator (election jitter)


@dataclass(frozen=True, slots=True)
class Restored:
    """What the driver read back from disk when it (re)starts a node."""

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()  # after snapshot.meta.index, contiguous
