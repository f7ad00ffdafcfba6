"""What a driver does with one Ready, and in what order: a pure function.

Both drivers use it, the node (``store/node.py``) and the simulator
(``store/raft/simulator.py``), so the seeded runs exercise the order production
uses. Given the node's role, the Ready and what is already on its disk,
``plan_ready`` says which messages leave now and which after the fsync, and which
committed entries are applied now and which after the fsync:

- A Ready that changes nothing Raft needs durable (no entries, no snapshot, the
  same term and vote; at most the commit index moved, which a restarted node
  learns again) needs no write: everything is sent and applied at once.
- Otherwise the driver writes the snapshot, the entries and the hard state and
  fsyncs once. Only then do its messages leave: a vote or an append answer promises
  something that must survive a crash. The exception is the leader (Raft thesis
  §10.2.1, as in etcd-io/raft's etcdserver): it sends APPEND, HEARTBEAT and
  SNAPSHOT before its own fsync, writing its log in parallel with its followers.
  That is safe because the core counts the leader's own log toward a quorum only
  once ``advance`` says it is on disk, and because a leader's term and vote were
  made durable before it could win its election (a Ready that still changes them
  sends nothing early).
- Committed entries that are already on disk here are applied at once, before
  this Ready's fsync (a leader's committed entries always are: it counts its own
  log only once persisted). The rest, and a snapshot to restore, wait for it.
  An entry this Ready overwrites is not on disk, whatever index the disk reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store import failpoints as fp
from store.raft.types import Entry, Message, MsgType, Ready, Role

# Messages a leader may send before its own entries are on disk.
EARLY = frozenset({MsgType.APPEND, MsgType.HEARTBEAT, MsgType.SNAPSHOT})


@dataclass(frozen=True, slots=True)
class Durable:
    """What the driver's disk holds after its last completed fsync."""

    last_index: int = 0  # the log is on disk through this index
    term: int = 0
    vote: int = 0


@dataclass(slots=True)
class Plan:
    fsync: bool  # write rd.snapshot, rd.entries, rd.hard_state and fsync before the rest
    send_now: list[Message] = field(default_factory=list)
    send_after: list[Message] = field(default_factory=list)  # once the fsync completes
    apply_now: list[Entry] = field(default_factory=list)
    apply_after: list[Entry] = field(default_factory=list)  # once the fsync completes


def plan_ready(rd: Ready, role: Role, durable: Durable) -> Plan:
    """The order in which a driver handles ``rd``.

    ``role`` is the node's role before this Ready (its ``soft_state``, if any,
    overrides it); ``durable`` what its disk held before it.
    """
    if rd.soft_state is not None:
        role = rd.soft_state.role
    hs = rd.hard_state
    term_vote_durable = hs is None or (hs.term, hs.vote) == (durable.term, durable.vote)
    if not rd.entries and rd.snapshot is None and term_vote_durable:
        return Plan(False, send_now=list(rd.messages), apply_now=list(rd.committed))
    if fp.ACTIVE is not None and "answer-before-persist" in fp.ACTIVE:
        now, after = list(rd.messages), []  # planted bug: promises before the fsync
    elif role is Role.LEADER and term_vote_durable:
        now = [m for m in rd.messages if m.type in EARLY]
        after = [m for m in rd.messages if m.type not in EARLY]
    else:
        now, after = [], list(rd.messages)
    if rd.snapshot is not None:
        return Plan(True, now, after, [], list(rd.committed))
    on_disk = durable.last_index
    if rd.entries:
        on_disk = min(on_disk, rd.entries[0].index - 1)
    split = 0
    for e in rd.committed:
        if e.index > on_disk:
            break
        split += 1
    return Plan(True, now, after, rd.committed[:split], rd.committed[split:])


def durable_after(durable: Durable, rd: Ready) -> Durable:
    """What the disk holds once ``rd`` has been written and fsynced."""
    last = durable.last_index
    if rd.snapshot is not None:
        last = rd.snapshot.meta.index
    if rd.entries:
        last = rd.entries[-1].index
    hs = rd.hard_state
    if hs is None:
        return Durable(last, durable.term, durable.vote)
    return Durable(last, hs.term, hs.vote)
