"""The node driver: runs the Raft core against real disk, network and time.

One asyncio loop owns everything. Raft's Ready is drained one at a time: the
disk write (one fsync for all its entries) runs in a worker thread while the
loop keeps taking requests and messages, which then go into the next Ready:
that is the group commit. What is sent and applied before the fsync and what
after is ``store.raft.plan.plan_ready``, the same plan the simulator runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from store import failpoints as fp
from store import member_snapshot
from store.config import ServerConfig
from store.peer import PeerTransport
from store.raft.core import Raft
from store.raft.plan import Durable, Plan, durable_after, plan_ready
from store.raft.types import (
    Config,
    Entry,
    EntryType,
    HardState,
    MsgType,
    Ready,
    Role,
)
from store.storage import DiskStorage
from store.storage.disk_thread import DiskThread
from store.v2.command import Command, decode, encode, sync
from store.v2.errors import EtcdError
from store.v2.store import Event, V2Store
from store.v3 import command as v3command
from store.v3 import errors as v3errors
from store.v3.autocompact import AutoCompactor
from store.v3.errors import V3Error
from store.v3.messages import CompactionRequest, Response
from store.v3.state import V3Store

log = logging.getLogger("store.node")

# A member writes its WAL on the loop thread while its recent saves took less than this
# on average, if the save holds one entry at most and no other request waits on this
# member (one client): the answer waits for the fsync anyway, and two thread switches
# per save cost more than the write itself on a fast disk. Under more load, or on a
# slower disk, it writes in the disk thread and its loop keeps taking requests, peer
# messages and reads meanwhile.
INLINE_SAVE_S = 0.001
# Planted bug `answer-before-persist` (store/failpoints.py): the member keeps its WAL
# writes in a user-space buffer, written and fsynced this often, and answers at once;
# `answer-before-persist=flush(S)` flushes every S seconds instead.
LAZY_FLUSH_S = 1.0
_ID_MASK = (1 << 63) - 1

_STATE_NAMES = {
    Role.LEADER: "StateLeader",
    Role.FOLLOWER: "StateFollower",
    Role.CANDIDATE: "StateCandidate",
    Role.PRE_CANDIDATE: "StatePreCandidate",
}


class _ReadDropped(Exception):
    """The core could not take a read-index request (no leader): try again."""


def _raft_error(cause: str, index: int = 0) -> EtcdError:
    return EtcdError.raft_internal(cause, index)


@dataclass(slots=True)
class _Counters:
    start_time: float = field(default_factory=time.time)
    recv_append: int = 0
    send_append: int = 0
    leader_since: float = 0.0


class Node:
    """One member: the Backend the HTTP server serves."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.me = cfg.me
        self.cluster_id = f"{cfg.cluster_id:x}"
        self.storage, restored = DiskStorage.open(
            cfg.data_dir, wal_dir=cfg.wal_dir, keep_snapshots=cfg.max_snapshots
        )
        meta = self.storage.read_meta()
        if meta is None and cfg.cluster_state == "existing":
            self.storage.close()
            raise RuntimeError(
                f"--initial-cluster-state existing, but {cfg.data_dir} holds no member: "
                "membership is static here, so a member joins only with "
                "--initial-cluster-state new"
            )
        wanted = {
            "name": cfg.name,
            "cluster_id": self.cluster_id,
            "members": {m.name: list(m.peer_urls) for m in cfg.members},
        }
        if meta is None:
            self.storage.write_meta(wanted)
        elif meta.get("cluster_id") != self.cluster_id or meta.get("name") != cfg.name:
            raise RuntimeError(
                f"{cfg.data_dir} belongs to member {meta.get('name')!r} of cluster "
                f"{meta.get('cluster_id')}, not {cfg.name!r} of {self.cluster_id}; "
                "use another --data-dir or the original flags"
            )
        self.store = V2Store()
        self.v3 = V3Store()
        if restored.snapshot is not None:
            self.store, self.v3 = member_snapshot.load(restored.snapshot.data)
            self._applied = restored.snapshot.meta.index
        else:
            self._applied = 0
        self._snap_index = self._applied
        hs = restored.hard_state
        self._durable = Durable(
            restored.entries[-1].index if restored.entries else self._applied, hs.term, hs.vote
        )
        self.raft = Raft(
            Config(
                id=self.me.raft_id,
                peers=tuple(m.raft_id for m in cfg.members),
                election_ticks=max(2, cfg.election_ms // cfg.heartbeat_ms),
                heartbeat_ticks=1,
                pre_vote=cfg.pre_vote,
                seed=int.from_bytes(os.urandom(8), "big"),
            ),
            restored,
        )
        self._by_raft_id = {m.raft_id: m for m in cfg.members}
        self._disk: DiskThread | None = None  # started with the loop
        self._waiters: dict[int, asyncio.Future[Event | Response]] = {}
        self._compactor = AutoCompactor(cfg.auto_compaction)
        self._reads: dict[bytes, asyncio.Future[int]] = {}
        self._read_waiting: list[tuple[int, asyncio.Future[int]]] = []  # (index, fut)
        self._read_seq = 0
        # Read contexts must be unique across members and restarts: the leader
        # matches heartbeat acks to reads by context alone.
        self._read_nonce = os.urandom(8)
        # Proposal ids count up from a random start: unique among the members (whose
        # commands all pass through every member's apply) without a syscall each.
        self._last_id = int.from_bytes(os.urandom(8), "big") & _ID_MASK
        self._busy = False  # a Ready is in flight
        # Saves not yet written: only with the planted bug `answer-before-persist`.
        self._unwritten: list[tuple[HardState | None, list[Entry]]] = []
        self._save_s = 0.0  # moving average of how long a save took (write + fsync)
        self._kicked = False
        self._leader_known: asyncio.Event | None = None
        self._role = Role.FOLLOWER
        self._leader = 0
        self._counters = _Counters()
        self._closing = False
        self._advance_pending = cfg.initial_election_tick_advance
        self._last_sync = 0.0
        self.peers: PeerTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # What the WAL holds as committed is applied before anything is served: a
        # restarted member must not answer from an older state than it answered
        # from before (etcd keeps its applied state in its backend). The core hands
        # these entries out again; _apply skips them.
        self._apply([e for e in restored.entries if e.index <= hs.commit])
        # The commit index is not always persisted, so entries applied before a crash
        # may lie past it: until one ReadIndex barrier has passed, serializable v3
        # reads wait for it (etcd serves no client before its first commit).
        self.caught_up = False

    # ---- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._disk = DiskThread(self._loop)
        self._leader_known = asyncio.Event()
        peers = {}
        for m in self.cfg.members:
            u = urlsplit(m.peer_urls[0])
            assert u.hostname and u.port
            peers[m.raft_id] = (u.hostname, u.port)
        self.peers = PeerTransport(
            self.me.raft_id,
            self.cfg.cluster_id,
            peers,
            self._on_message,
            election_ms=self.cfg.election_ms,
            client_urls=self.cfg.advertise_client_urls,
            on_peer_lost=self._on_peer_lost,
            names={m.raft_id: m.name for m in self.cfg.members},
        )
        await self.peers.listen(*self.cfg.listen_peer)
        self._tick_handle = self._loop.call_later(self.cfg.heartbeat_ms / 1000, self._tick)
        self._kick()
        self._catching_up = self._loop.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Pass one ReadIndex barrier as soon as there is a leader (see caught_up)."""
        while not self.caught_up and not self._closing:
            with contextlib.suppress(EtcdError):
                await self.linearize()

    async def close(self) -> None:
        self._closing = True
        self._tick_handle.cancel()
        self._catching_up.cancel()
        if self.peers is not None:
            await self.peers.close()
        # Let an in-flight disk write finish: it may hold acknowledged entries.
        if self._disk is not None:
            self._disk.shutdown()
        self.storage.close()

    # ---- inputs to the core ----------------------------------------------

    def _tick(self) -> None:
        if self._closing:
            return
        if self._advance_pending:
            self._maybe_advance_election()
        self.raft.tick()
        if self._role is Role.LEADER:
            expiry = self.store.next_expiry()
            now = time.time()
            # Expiry goes through the log like any write, so every member
            # removes the same keys at the same index (etcd's SYNC).
            if expiry is not None and expiry <= now and now - self._last_sync >= 0.5:
                self._last_sync = now
                self.raft.propose(encode(sync(now)))
            target = self._compactor.due(time.monotonic(), self.v3.revision)
            if target is not None:
                log.info("auto-compaction: compacting the v3 keyspace at revision %d", target)
                self.raft.propose(v3command.encode(v3command.V3Command(CompactionRequest(target))))
        assert self._loop is not None
        self._tick_handle = self._loop.call_later(self.cfg.heartbeat_ms / 1000, self._tick)
        self._kick()

    def _maybe_advance_election(self) -> None:
        # As etcd: once enough peers are connected to elect a leader (or a leader is
        # known already), and only once.
        assert self.peers is not None
        peers = self.peers
        if self._leader:
            self._advance_pending = False
            return
        up = 1 + sum(peers.connected(m.raft_id) for m in self.cfg.members if m != self.me)
        if 2 * up > len(self.cfg.members):
            self._advance_pending = False
            self.raft.advance_election()
            log.info("%s advanced its election ticks (%d of %d members up)",
                     self.cfg.name, up, len(self.cfg.members))

    def _on_message(self, msg) -> None:
        if msg.type is MsgType.APPEND:
            self._counters.recv_append += 1
        self.raft.step(msg)
        self._kick()

    def _on_peer_lost(self, peer: int) -> None:
        # A closed connection (not a silent one: a partition closes nothing) means
        # the peer's process is gone, or restarting.
        if peer == self._leader and self._role is Role.FOLLOWER:
            log.info("%s lost its connection to the leader; forgetting it", self.cfg.name)
            self.raft.forget_leader()
            self._kick()

    def _kick(self) -> None:
        if not self._kicked and not self._busy and not self._closing:
            self._kicked = True
            assert self._loop is not None
            self._loop.call_soon(self._drain)

    # ---- the Ready cycle -------------------------------------------------

    def _drain(self) -> None:
        self._kicked = False
        if self._busy or self._closing or not self.raft.has_ready():
            return
        try:
            self._drain_one()
        except BaseException as e:
            _crash_stop("the Ready cycle failed", e)

    def _drain_one(self) -> None:
        rd = self.raft.ready()
        plan = plan_ready(rd, self._role, self._durable)
        self._send(plan.send_now)
        self._apply(plan.apply_now)
        if not plan.fsync:
            self._finish(rd, [])
            return
        if fp.ACTIVE is not None and "answer-before-persist" in fp.ACTIVE:
            if rd.snapshot is None:
                self._buffer(rd)  # planted bug: answered, not written yet
                self._persisted(None, rd, plan)
                return
            self._flush_unwritten()
        self._busy = True
        disk = self._disk
        assert disk is not None
        if (
            self._nothing_else_waits(rd)
            and rd.snapshot is None  # a whole state machine: never on the loop
            and self._save_s < INLINE_SAVE_S
            and not disk.pending
        ):
            error: BaseException | None = None
            try:
                self._save(rd)
            except BaseException as e:
                error = e
            self._persisted(error, rd, plan)
            return
        disk.submit(lambda: self._save(rd), lambda exc: self._persisted(exc, rd, plan))

    def _nothing_else_waits(self, rd: Ready) -> bool:
        """This Ready writes at most one entry and no other request waits here (one
        client): the loop would have nothing to do while the disk thread wrote.
        Several entries mean a load the thread lets it keep taking."""
        entries = len(rd.entries)
        return entries <= 1 and len(self._waiters) + len(self._reads) <= entries

    def _save(self, rd: Ready) -> None:
        started = time.perf_counter()
        self.storage.save(rd.hard_state, rd.entries, rd.snapshot)
        self._save_s += (time.perf_counter() - started - self._save_s) / 8

    def _buffer(self, rd: Ready) -> None:
        """Planted bug `answer-before-persist`: keep the save in a user-space buffer,
        written by the next lazy flush, as a store with a write buffer would; a crash
        (SIGKILL) before it loses what this member already answered for."""
        if not self._unwritten:
            every = fp.argument("answer-before-persist", "flush")
            self._loop.call_later(LAZY_FLUSH_S if every is None else every,
                                  self._flush_unwritten)
        self._unwritten.append((rd.hard_state, list(rd.entries)))

    def _flush_unwritten(self) -> None:
        if not self._unwritten or self._closing:
            return
        saves, self._unwritten = self._unwritten, []
        save = self.storage.save

        def write() -> None:
            for hs, entries in saves:
                save(hs, entries)

        def written(exc: BaseException | None) -> None:
            if exc is not None:
                _crash_stop("disk write failed", exc)

        assert self._disk is not None
        self._disk.submit(write, written)

    def _persisted(self, exc: BaseException | None, rd: Ready, plan: Plan) -> None:
        if exc is not None:
            _crash_stop("disk write failed", exc)
        if self._closing:
            return
        self._busy = False
        self._durable = durable_after(self._durable, rd)
        try:
            self._send(plan.send_after)
            self._finish(rd, plan.apply_after)
        except BaseException as e:
            _crash_stop("the Ready cycle failed", e)

    def _send(self, msgs: list) -> None:
        peers = self.peers
        assert peers is not None
        for m in msgs:
            if m.type is MsgType.APPEND:
                self._counters.send_append += 1
            peers.send(m)

    def _finish(self, rd: Ready, committed: list[Entry]) -> None:
        if rd.snapshot is not None and rd.snapshot.meta.index > self._applied:
            old = self.store
            self.store, self.v3 = member_snapshot.load(rd.snapshot.data)
            self.store.take_watchers(old)
            self._applied = rd.snapshot.meta.index
            self._snap_index = self._applied
        self._apply(committed)
        if rd.soft_state is not None:
            # After applying: a leader that steps down answers only the writes that
            # did not commit in this Ready.
            self._on_soft_state(rd.soft_state.role, rd.soft_state.leader)
        for rs in rd.read_states:
            fut = self._reads.pop(rs.context, None)
            if fut is not None and not fut.done():
                if rs.index <= self._applied or (
                        fp.ACTIVE is not None and "read-before-apply" in fp.ACTIVE):
                    fut.set_result(rs.index)  # (planted bug: without waiting for apply)
                else:
                    self._read_waiting.append((rs.index, fut))
        for ctx in rd.dropped_reads:
            fut = self._reads.pop(ctx, None)
            if fut is not None and not fut.done():
                fut.set_exception(_ReadDropped())
        for data in rd.dropped:
            w = self._waiters.pop(_command_id(data), None)
            if w is not None and not w.done():
                w.set_exception(_raft_error("etcdserver: no leader"))
        self.raft.advance(rd)
        self._maybe_snapshot()
        self._kick()

    def _apply(self, committed: list[Entry]) -> None:
        waiters = self._waiters
        for e in committed:
            if e.index <= self._applied:
                continue
            if e.type is EntryType.NORMAL and e.data:
                result: Event | Response | EtcdError | V3Error | None
                if v3command.is_v3(e.data):
                    cmd3 = v3command.decode(e.data)
                    cmd_id = cmd3.id
                    result = self.v3.apply(cmd3.req)
                else:
                    cmd = decode(e.data)
                    cmd_id = cmd.id
                    result = self.store.apply(cmd)
                w = waiters.pop(cmd_id, None)
                if w is not None and not w.done():
                    if isinstance(result, EtcdError | V3Error):
                        w.set_exception(result)
                    else:
                        w.set_result(result)
            self._applied = e.index
        if self._read_waiting:
            still = []
            for index, fut in self._read_waiting:
                if index <= self._applied:
                    if not fut.done():
                        fut.set_result(index)
                else:
                    still.append((index, fut))
            self._read_waiting = still

    def _maybe_snapshot(self) -> None:
        if self._applied - self._snap_index < self.cfg.snapshot_count:
            return
        self._flush_unwritten()  # (planted bug only) the WAL before the snapshot mark
        snap = self.raft.compact(self._applied, member_snapshot.dump(self.store, self.v3))
        self._snap_index = self._applied
        if snap is None:  # the core holds a newer snapshot, received from the leader
            return
        assert self._disk is not None
        save = self.storage.save_snapshot
        self._disk.submit(lambda: save(snap), self._snapshot_saved)
        log.info("snapshot at index %d (%d bytes)", snap.meta.index, len(snap.data))

    @staticmethod
    def _snapshot_saved(exc: BaseException | None) -> None:
        if exc is not None:
            _crash_stop("snapshot write failed", exc)

    def _on_soft_state(self, role: Role, leader: int) -> None:
        assert self._leader_known is not None
        if role != self._role:
            if self._role is Role.LEADER:
                # Stepped down: what it proposed may or may not commit under the next
                # leader; answer now (500, indeterminate) rather than at the timeout.
                for w in self._waiters.values():
                    if not w.done():
                        w.set_exception(_raft_error("etcdserver: leader changed"))
            log.info(
                "%s is now %s at term %d (leader %s)",
                self.cfg.name,
                _STATE_NAMES[role],
                self.raft.term,
                self._by_raft_id[leader].name if leader in self._by_raft_id else "none",
            )
            if role is Role.LEADER:
                self._counters.leader_since = time.time()
        if leader != self._leader:
            self._counters.leader_since = time.time()
        self._role, self._leader = role, leader
        if leader:
            self._leader_known.set()
        else:
            self._leader_known.clear()

    # ---- the Backend the HTTP layer calls ---------------------------------

    @property
    def raft_index(self) -> int:
        return self._applied

    @property
    def raft_term(self) -> int:
        return self.raft.term

    async def propose(self, cmd: Command) -> Event:
        cmd_id = self._next_id()
        result = await self._propose(cmd_id, encode(cmd, cmd_id))
        assert isinstance(result, Event)
        return result

    async def propose_v3(self, cmd: v3command.V3Command) -> Response:
        """Returns the write's response once applied here; raises V3Error (the apply's,
        or etcd's 14 Unavailable on a timeout, without a leader, on a leader change)."""
        cmd_id = self._next_id()
        try:
            data = v3command.encode(cmd, cmd_id)
            result = await self._propose(cmd_id, data)
        except EtcdError as e:
            raise v3_unavailable(e) from None
        assert not isinstance(result, Event)
        return result

    def _next_id(self) -> int:
        self._last_id = (self._last_id + 1) & _ID_MASK or 1
        return self._last_id

    async def _propose(self, cmd_id: int, data: bytes) -> Event | Response:
        loop = self._loop
        assert loop is not None and self._leader_known is not None
        deadline = loop.time() + self.cfg.request_timeout_s
        while not self.raft.propose(data):
            # No leader to take it yet: wait for one, as etcd does, until the deadline.
            await self._await_leader(deadline)
        fut: asyncio.Future[Event | Response] = loop.create_future()
        self._waiters[cmd_id] = fut
        self._kick()
        # A plain timer rather than asyncio.wait_for: this is the write path, and
        # wait_for's extra future and task cost more than the rest of the await.
        timer = loop.call_at(deadline, _time_out, fut)
        try:
            return await fut
        finally:
            timer.cancel()
            self._waiters.pop(cmd_id, None)

    async def _await_leader(self, deadline: float) -> None:
        """Wait up to a heartbeat for a leader to be known; 500 once past the deadline."""
        assert self._loop is not None and self._leader_known is not None
        left = deadline - self._loop.time()
        if left <= 0:
            raise _raft_error("etcdserver: request timed out")
        wait = min(left, self.cfg.heartbeat_ms / 1000)
        if self._leader_known.is_set():
            await asyncio.sleep(wait)  # a leader, but not taking requests right now
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leader_known.wait(), wait)

    async def linearize(self) -> None:
        if fp.ACTIVE is not None and "read-without-readindex" in fp.ACTIVE and self.caught_up:
            return  # planted bug: the member's own state, whatever the others know
        loop = self._loop
        assert loop is not None and self._leader_known is not None
        deadline = loop.time() + self.cfg.request_timeout_s
        while True:
            self._read_seq += 1
            ctx = self._read_nonce + self._read_seq.to_bytes(8, "big")
            fut: asyncio.Future[int] = loop.create_future()
            self._reads[ctx] = fut
            self.raft.read_index(ctx)
            self._kick()
            timer = loop.call_at(deadline, _time_out, fut)
            try:
                await fut
                self.caught_up = True
                return
            except _ReadDropped:
                # No leader (yet) to confirm the read: wait for one, as writes do.
                await self._await_leader(deadline)
            finally:
                timer.cancel()
                self._reads.pop(ctx, None)

    def stats_self(self) -> dict:
        leader = self._by_raft_id.get(self._leader)
        c = self._counters
        return {
            "name": self.cfg.name,
            "id": self.me.hex_id,
            "state": _STATE_NAMES[self._role],
            "startTime": _iso(c.start_time),
            "leaderInfo": {
                "leader": leader.hex_id if leader else "",
                "uptime": f"{time.time() - c.leader_since:.6f}s" if leader else "",
                "startTime": _iso(c.leader_since) if leader else "",
            },
            "recvAppendRequestCnt": c.recv_append,
            "sendAppendRequestCnt": c.send_append,
            "raftTerm": self.raft.term,
            "raftIndex": self._applied,
            "walSaves": self.storage.stats.saves,
            "walFsyncs": self.storage.stats.fsyncs,
        }

    def stats_leader(self) -> dict | None:
        if self._role is not Role.LEADER:
            return None
        st = self.raft.status()
        followers = {}
        for m in self.cfg.members:
            if m.raft_id == self.me.raft_id:
                continue
            followers[m.hex_id] = {
                "name": m.name,
                "match": st.get("progress", {}).get(m.raft_id, {}).get("match", 0),
                "connected": bool(self.peers and self.peers.connected(m.raft_id)),
            }
        return {"leader": self.me.hex_id, "followers": followers}

    def members(self) -> list[dict]:
        # Other members' client URLs arrive in their peer hello (etcd publishes them
        # through Raft); a member not heard from yet lists none, as in etcd.
        assert self.peers is not None
        known = self.peers.client_urls
        return [
            {
                "id": m.hex_id,
                "name": m.name,
                "peerURLs": list(m.peer_urls),
                "clientURLs": list(known.get(m.raft_id, ())),
            }
            for m in self.cfg.members
        ]

    def health(self) -> bool:
        return self._leader != 0

    # ---- what the v3 gateway needs besides the v3 state ----------------------------

    @property
    def member_id(self) -> int:
        return self.me.id

    @property
    def leader_id(self) -> int:
        leader = self._by_raft_id.get(self._leader)
        return leader.id if leader else 0

    @property
    def raft_commit(self) -> int:
        return self.raft.commit

    async def linearize_v3(self) -> None:
        try:
            await self.linearize()
        except EtcdError as e:
            raise v3_unavailable(e) from None


def _command_id(data: bytes) -> int:
    return v3command.decode(data).id if v3command.is_v3(data) else decode(data).id


def v3_unavailable(e: EtcdError) -> V3Error:
    """The v3 error for a write or read the cluster could not serve (the v2 300 error)."""
    if "leader changed" in e.cause:
        return v3errors.leader_changed()
    if "no leader" in e.cause:
        return v3errors.no_leader()
    return v3errors.timed_out()


def _time_out(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(_raft_error("etcdserver: request timed out"))


def _crash_stop(what: str, exc: BaseException) -> None:
    # A member whose Raft state and disk may now disagree must not answer anything
    # more: it stops at once, and restarts from what is on disk.
    log.critical("%s, stopping: %r", what, exc, exc_info=exc)
    logging.shutdown()
    os._exit(70)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"
