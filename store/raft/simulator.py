"""A deterministic simulator for the Raft core: N cores in one process, on a seeded
virtual clock and a hostile virtual network, with crashes and restarts, clients
whose operations are recorded as a history, and Raft's safety invariants
checked after every step. The same seed replays the same run.

    python -m store.raft.simulator --seeds 0:1000 [--nodes 5] [--faults heavy] [--machine v3]

``--machine v3`` runs the clients' operations through the v3 state machine
(store/v3) as txns and ranges, with compactions in the log.

Exit status: 0 all runs passed, 1 some run failed (each printed with the command
that replays it), 2 none failed but the checker's budget ran out on some.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from checker.history import UNOBSERVED, Op, Outcome, pair
from checker.linearizable import CheckResult, check_operations
from checker.models import make_model
from store.raft.core import Raft
from store.raft.plan import Durable, Plan, durable_after, plan_ready
from store.raft.sim.disk import DiskError
from store.raft.sim.history import ClientOp, History
from store.raft.sim.invariants import Invariants, Violation
from store.raft.sim.kv import Command, KvMachine
from store.raft.sim.network import PRESETS, Faults, Network
from store.raft.sim.node import SimNode
from store.raft.sim.result import DEFAULT_STEPS, SimResult
from store.raft.sim.v3kv import V3KvMachine
from store.raft.types import Config, Entry, Message, MsgType, Ready, Restored, Role

KEYS = ("a", "b", "c")
FINAL_KEY = "final"  # the settle-phase write's key
CLIENT_TIMEOUT = 400  # ms a client waits for an answer
SETTLE_TIMEOUT = 20_000  # ms the healed cluster has to make progress
SETTLE_EVENTS = 200_000  # events it has for that (a message storm is no progress either)
CHECK_SECONDS = 20.0  # the linearizability checker's budget per run

# Event kinds, in the order ties at one instant are broken (then by schedule order).
_TICK, _DELIVER, _PERSIST, _CLIENT, _DEADLINE, _FAULT, _RESTART = range(7)

MACHINES: dict[str, type[KvMachine] | type[V3KvMachine]] = {
    "kv": KvMachine,  # a plain map with write and cas
    "v3": V3KvMachine,  # the same operations as v3 txns and ranges, plus compactions
}
COMPACT_P = 0.08  # v3: how often a client's turn also proposes a compaction

CoreFactory = Callable[[Config, Restored], Raft]
Planner = Callable[[Ready, Role, Durable], Plan]

__all__ = ["PRESETS", "Faults", "SimResult", "Simulation", "main", "simulate"]


class Simulation:
    def __init__(
        self,
        seed: int,
        nodes: int,
        faults: Faults,
        core_factory: CoreFactory = Raft,
        planner: Planner = plan_ready,
        machine: str = "kv",
    ) -> None:
        self.seed = seed
        self.machine = MACHINES[machine]
        self.planner = planner
        self.rng = rng = random.Random(seed)
        self.faults = faults
        self.core_factory = core_factory
        self.ids = list(range(1, nodes + 1))
        self.net = Network(random.Random(rng.getrandbits(64)), faults)
        self.inv = Invariants()
        self.result = SimResult(seed, nodes)
        self.history = History()
        self.now = 0
        self._seq = 0
        self._queue: list[tuple[int, int, int, int, Any]] = []
        self.settling = False
        self.check_seconds = CHECK_SECONDS
        # Per-run knobs, drawn from the seed so that runs cover many settings.
        self.pre_vote = rng.random() < 0.75
        self.check_quorum = rng.random() < 0.75
        self.max_entries = rng.choice((1, 3, 16, 4096))
        self.max_inflight = rng.choice((1, 2, 8, 256))
        self.snapshot_every = rng.choice((5, 20, 60))
        self.keep_entries = rng.choice((0, 2, 10))
        self.heartbeat_ticks = rng.choice((1, 2))
        self.nodes = {i: SimNode(i, self.machine()) for i in self.ids}
        # Each client's current process id; the last client makes the settle-phase write.
        self.clients = list(range(nodes + 2))
        self.final_client = nodes + 1
        self._next_req = 0
        self._next_value = 0
        self.written: dict[str, list[int]] = {k: [] for k in KEYS}
        self.final_index = 0  # the log index of the settle-phase write, once applied
        self._revisions: dict[int, int] = {}  # v3: log index -> revision after applying it

    # -- events ----------------------------------------------------------------

    def _at(self, delay: int, kind: int, target: int, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, kind, self._seq, target, payload))

    def run(self, steps: int) -> SimResult:
        res = self.result
        try:
            for node in self.nodes.values():
                self._start(node)
                self._at(self.rng.randrange(10), _TICK, node.id, (node.epoch, 9 + node.id % 3))
            for c in range(self.final_client):
                self._at(self.rng.randrange(50), _CLIENT, c)
            if self.faults.partition_every:
                self._at(self._exp(self.faults.partition_every), _FAULT, 0, "partition")
            if self.faults.crash_every:
                self._at(self._exp(self.faults.crash_every), _FAULT, 0, "crash")
            if self.faults.transfer_every:
                self._at(self._exp(self.faults.transfer_every), _FAULT, 0, "transfer")
            if self.faults.power_loss_every:
                self._at(self._exp(self.faults.power_loss_every), _FAULT, 0, "power loss")
            for _ in range(steps):
                self._step()
            self._settle()
        except Violation as v:
            res.violation = f"t={self.now}ms: {v}"
        except DiskError as e:
            res.violation = f"t={self.now}ms: storage contract: {e}"
        except Exception as e:  # a core that raises is broken too: report, do not crash
            where = traceback.extract_tb(e.__traceback__)[-1]
            res.violation = (
                f"t={self.now}ms: {type(e).__name__}: {e} "
                f"({where.filename}:{where.lineno} in {where.name})"
            )
        res.history = self.history.observed()
        res.virtual_ms = self.now
        res.elections = len(self.inv.leaders)
        res.messages = self.net.sent
        res.dropped = self.net.dropped
        res.duplicated = self.net.duplicated
        if res.violation is None:
            self._check_history()
        return res

    def _exp(self, mean: int) -> int:
        return 1 + int(self.rng.expovariate(1 / mean))

    def _step(self) -> None:
        when, kind, _, target, payload = heapq.heappop(self._queue)
        self.now = when
        self.result.events += 1
        if kind == _TICK:
            self._on_tick(target, payload)
        elif kind == _DELIVER:
            self._on_deliver(payload)
        elif kind == _PERSIST:
            self._on_persist(target, payload)
        elif kind == _CLIENT:
            self._on_client(target)
        elif kind == _DEADLINE:
            self._on_deadline(payload)
        elif kind == _FAULT:
            self._on_fault(payload)
        else:
            self._on_restart(target)

    def _on_tick(self, node_id: int, payload: tuple[int, int]) -> None:
        epoch, period = payload
        node = self.nodes[node_id]
        if node.epoch != epoch or node.core is None:
            return
        node.core.tick()
        self._pump(node)
        self._at(period, _TICK, node_id, payload)

    def _on_deliver(self, m: Message) -> None:
        node = self.nodes[m.to]
        if node.core is None or not self.net.can_deliver(m):
            return
        node.core.step(m)
        self._pump(node)

    # -- a node's driver loop ------------------------------------------------

    def _start(self, node: SimNode) -> None:
        cfg = Config(
            id=node.id,
            peers=tuple(self.ids),
            election_ticks=10,
            heartbeat_ticks=self.heartbeat_ticks,
            max_entries_per_msg=self.max_entries,
            max_bytes_per_msg=1 << 20,
            max_inflight=self.max_inflight,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            seed=self.rng.getrandbits(32),
        )
        try:
            node.core = core = self.core_factory(cfg, node.disk.restored())
        except ValueError as e:
            raise Violation(f"node {node.id} cannot restart from its own disk: {e}") from e
        snap = node.disk.snapshot
        node.kv = self.machine.restore(snap.data) if snap else self.machine()
        node.last_snapshot = node.kv.applied
        node.seen_commit = core.commit
        node.durable = node.disk.durable()
        node.in_flight = False
        node.reads.clear()

    def _pump(self, node: SimNode) -> None:
        """Take the next Ready if none is being persisted; observe the core.

        The Ready is handled as the node's driver handles it (``plan_ready``):
        what the plan allows goes out and is applied at once, the rest once the
        simulated disk has written it, ``disk_delay`` later (a crash meanwhile
        loses the write, not what was already sent).
        """
        core = node.core
        assert core is not None
        self._observe(node, core)
        if node.in_flight or not core.has_ready():
            return
        rd = core.ready()
        plan = self.planner(rd, core.role, node.durable)
        if plan.fsync and plan.send_now:
            self.result.early_sends += 1
        self._send(plan.send_now)
        self._apply(node, plan.apply_now)
        if not plan.fsync:
            self._finish(node, core, rd, [])
            return
        node.in_flight = True
        f = self.faults
        slow = f.slow_disk and self.rng.random() < f.slow_disk
        delay = self.rng.randint(*(f.slow_disk_delay if slow else f.disk_delay))
        self._at(delay, _PERSIST, node.id, (node.epoch, rd, plan))

    def _observe(self, node: SimNode, core: Raft) -> None:
        if core.commit != node.seen_commit:
            self.inv.commit(node.id, core, node.seen_commit)
            if core.commit > node.seen_commit:
                self._check_durable_on_quorum(node.id, core)
            node.seen_commit = core.commit
        if core.role == Role.LEADER and self.inv.leader(node.id, core):
            self.result.log.append(f"t={self.now} node {node.id} leads term {core.term}")

    def _check_durable_on_quorum(self, node_id: int, core: Raft) -> None:
        """An entry is committed only once a majority's disks hold it (in their log
        or under their snapshot): what a crash of every node keeps. By log
        matching, holding the newest committed entry means holding all before it."""
        index = core.commit
        term = core.term_at(index)
        if term is None:
            return  # under this node's snapshot: checked when it was committed
        holders = [
            n.id
            for n in self.nodes.values()
            if n.disk.snap_index >= index or n.disk.term(index) == term
        ]
        if 2 * len(holders) <= len(self.nodes):
            raise Violation(
                f"durability: node {node_id} committed entry {index} (term {term}), "
                f"which only nodes {holders} have on disk"
            )

    def _send(self, msgs: list[Message]) -> None:
        for m in msgs:
            if m.type == MsgType.SNAPSHOT:
                self.result.snapshots_sent += 1
            for latency in self.net.route(m):
                self._at(latency, _DELIVER, m.to, m)

    def _apply(self, node: SimNode, entries: list[Entry]) -> None:
        for e in entries:
            if e.index <= node.kv.applied:
                continue
            self.inv.apply(node.id, node.kv.applied, e)
            before = node.kv.revision if isinstance(node.kv, V3KvMachine) else 0
            outcome = node.kv.apply(e)
            if isinstance(node.kv, V3KvMachine):
                self._check_revision(node.id, e.index, before, node.kv.revision)
            if outcome is not None:
                self.history.was_applied(self.now, outcome.req, outcome.ok)
                op = node.waiting.pop(outcome.req, None)
                if op is not None:
                    if op.client == self.final_client:
                        self.final_index = max(self.final_index, e.index)
                    self._complete(op, "ok" if outcome.ok else "fail")

    def _check_revision(self, node_id: int, index: int, before: int, after: int) -> None:
        """v3: a member's revision never goes back, and every member has the same
        revision after applying the same entry."""
        if after < before:
            raise Violation(f"node {node_id}'s v3 revision went from {before} to {after} "
                            f"applying entry {index}")
        agreed = self._revisions.setdefault(index, after)
        if agreed != after:
            raise Violation(f"node {node_id} is at v3 revision {after} after entry {index}, "
                            f"another node was at {agreed}")

    def _on_persist(self, node_id: int, payload: tuple[int, Ready, Plan]) -> None:
        epoch, rd, plan = payload
        node = self.nodes[node_id]
        core = node.core
        if node.epoch != epoch or core is None:
            return  # the process crashed before its write reached the disk
        if self.rng.random() < self.faults.crash_before_fsync:
            # The process dies with this write in flight: whatever the plan sent
            # early is out, the write is lost.
            self.result.crashes_before_fsync += 1
            if plan.send_now:
                self.result.crashes_after_early_send += 1
            self._crash(node)
            return
        disk = node.disk
        disk.save(rd)
        node.durable = durable_after(node.durable, rd)
        if rd.entries:
            self.inv.persist(node.id, rd.entries, disk.term(rd.entries[0].index - 1))
        self._send(plan.send_after)
        if rd.snapshot is not None:
            self.result.snapshots_installed += 1
            self.inv.snapshot(node.id, rd.snapshot.meta.index, rd.snapshot.data)
            node.kv = self.machine.restore(rd.snapshot.data)
            node.kv.applied = rd.snapshot.meta.index
            node.last_snapshot = node.kv.applied
        node.in_flight = False
        self._finish(node, core, rd, plan.apply_after)

    def _finish(self, node: SimNode, core: Raft, rd: Ready, committed: list[Entry]) -> None:
        self._apply(node, committed)
        for rs in rd.read_states:
            node.reads.append((rs.index, rs.context))
        for ctx in rd.dropped_reads:
            op = node.waiting.pop(ctx, None)
            if op is not None:
                self._complete(op, "fail", error="no leader")
        for data in rd.dropped:
            op = node.waiting.pop(self.machine.request_id(data), None)
            if op is not None:
                self._complete(op, "info", error="dropped")  # another copy may live on
        self._serve_reads(node)
        core.advance(rd)
        if node.kv.applied - node.last_snapshot >= self.snapshot_every:
            data = node.kv.serialize()
            self.inv.snapshot(node.id, node.kv.applied, data)
            snap = core.compact(node.kv.applied, data, keep=self.keep_entries)
            if snap is not None:
                node.disk.compact(snap)
                self.result.compactions += 1
            node.last_snapshot = node.kv.applied
        self._pump(node)

    def _serve_reads(self, node: SimNode) -> None:
        if not node.reads:
            return
        applied = node.kv.applied
        keep = []
        for index, ctx in node.reads:
            if index > applied:
                keep.append((index, ctx))
                continue
            op = node.waiting.pop(ctx, None)
            if op is not None:
                op.value = node.kv.read(op.key)
                self._complete(op, "ok")
        node.reads = keep

    # -- faults --------------------------------------------------------------

    def _on_fault(self, what: str) -> None:
        if self.settling:
            return
        f = self.faults
        if what == "partition":
            if self.net.blocked:
                self.net.heal()
                self.result.log.append(f"t={self.now} heal")
                self._at(self._exp(f.partition_every), _FAULT, 0, "partition")
            else:
                self.result.log.append(f"t={self.now} {self.net.partition(self.ids)}")
                self._at(self.rng.randint(*f.partition_for), _FAULT, 0, "partition")
        elif what == "transfer":
            leader = self._leader()
            if leader is not None:
                to = self.rng.choice([i for i in self.ids if i != leader])
                self.result.log.append(f"t={self.now} transfer leadership {leader} -> {to}")
                core = self.nodes[leader].core
                assert core is not None
                core.transfer_leadership(to)
                self._pump(self.nodes[leader])
            self._at(self._exp(f.transfer_every), _FAULT, 0, "transfer")
        elif what == "power loss":
            # Every process dies at once: each loses the write it had in flight.
            self.result.log.append(f"t={self.now} power loss")
            self.result.power_losses += 1
            for node in self.nodes.values():
                if node.core is not None:
                    self._crash(node)
            self._at(self._exp(f.power_loss_every), _FAULT, 0, "power loss")
        else:
            live = [n for n in self.nodes.values() if n.core is not None]
            if live:
                self._crash(self.rng.choice(live))
            self._at(self._exp(f.crash_every), _FAULT, 0, "crash")

    def _crash(self, node: SimNode) -> None:
        self.result.log.append(f"t={self.now} crash {node.id}")
        node.core = None
        node.epoch += 1
        node.in_flight = False
        for op in list(node.waiting.values()):
            self._complete(op, "info", error="crashed")
        node.waiting.clear()
        # The real driver sees the crashed process's connections close, and its
        # followers forget it as leader (Raft.forget_leader); do the same here.
        for other in self.nodes.values():
            if other.core is not None and other.core.leader == node.id:
                other.core.forget_leader()
                self._pump(other)
        self._at(self.rng.randint(*self.faults.down_for), _RESTART, node.id)

    def _on_restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.core is not None:
            return
        self.result.restarts += 1
        self.result.log.append(f"t={self.now} restart {node_id}")
        self._start(node)
        self._at(self.rng.randrange(10), _TICK, node_id, (node.epoch, 9 + node_id % 3))
        self._pump(node)

    # -- clients -------------------------------------------------------------

    def _on_client(self, client: int) -> None:
        if self.settling:
            return
        rng = self.rng
        if self.machine.compacts and rng.random() < COMPACT_P:
            self._propose_compaction()
        key = rng.choice(KEYS)
        roll = rng.random()
        if roll < 0.35:
            self._invoke(client, "read", key)
        elif roll < 0.55 and self.written[key]:
            self._invoke(client, "cas", key)
        else:
            self._invoke(client, "write", key)

    def _invoke(self, client: int, f: str, key: str, node_id: int | None = None) -> ClientOp:
        rng = self.rng
        if node_id is None:
            node_id = rng.choice(self.ids)
        node = self.nodes[node_id]
        process = self.clients[client]
        self._next_req += 1
        req = self._next_req
        if f == "read":
            value: Any = UNOBSERVED
            tag: int | bytes = f"r{req}".encode()
        else:
            self._next_value += 1
            new = self._next_value
            tag = req
            if f == "cas":
                old = rng.choice(self.written[key][-3:])
                value = [old, new]
                cmd = Command(req, "c", key, new, old)
            else:
                value = new
                cmd = Command(req, "w", key, new)
            self.written.setdefault(key, []).append(new)
        op = self.history.invoke(self.now, client, process, f, key, value, node_id, tag)
        core = node.core
        if core is None:
            self._complete(op, "fail", error="connection refused")
            return op
        if isinstance(tag, bytes):
            node.waiting[tag] = op
            core.read_index(tag)
        elif core.propose(self.machine.encode(cmd)):
            node.waiting[tag] = op
        else:
            self._complete(op, "fail", error="no leader")
            return op
        self._at(CLIENT_TIMEOUT, _DEADLINE, client, op)
        self._pump(node)
        return op

    def _propose_compaction(self) -> None:
        """A compaction a few revisions back from what a random node has applied (it may
        be compacted already, or ahead of the leader): not a client operation."""
        node = self.nodes[self.rng.choice(self.ids)]
        if node.core is None or not isinstance(node.kv, V3KvMachine):
            return
        self._next_req += 1
        target = node.kv.revision - self.rng.randrange(4)
        if node.core.propose(V3KvMachine.compaction(self._next_req, target)):
            self.result.v3_compactions += 1
            self._pump(node)

    def _on_deadline(self, op: ClientOp) -> None:
        if op.done:
            return
        self.nodes[op.node].waiting.pop(op.tag, None)
        self._complete(op, "info", error="timeout")

    def _complete(self, op: ClientOp, kind: Outcome, error: Any = None) -> None:
        if op.done:
            return
        self.history.complete(self.now, op, kind, error)
        self.result.ops[kind] += 1
        if kind == "info":  # an indeterminate process is replaced, as in Jepsen
            self.clients[op.client] += len(self.clients)
        if op.client != self.final_client and not self.settling:
            pause = self.rng.randrange(20) if kind == "ok" else 10 + self.rng.randrange(40)
            self._at(pause, _CLIENT, op.client)

    # -- the end: heal, require progress, check the history --------------------

    def _settle(self) -> None:
        self.settling = True
        self.net.heal()
        self.net.faults = PRESETS["none"]
        self.result.log.append(f"t={self.now} settle: heal, restart everything")
        for node in self.nodes.values():
            if node.core is None:
                self._on_restart(node.id)
        deadline = self.now + SETTLE_TIMEOUT
        final: ClientOp | None = None
        budget = SETTLE_EVENTS
        while self.now < deadline and budget:
            budget -= 1
            if (final is None or final.done) and not self.final_index:
                leader = self._leader()
                if leader is not None:
                    final = self._invoke(self.final_client, "write", FINAL_KEY, leader)
            if self.final_index and all(
                n.kv.applied >= self.final_index for n in self.nodes.values()
            ):
                self._drain()
                return
            if not self._queue:
                break
            self._step()
        raise Violation(
            f"no progress: {self.now - deadline + SETTLE_TIMEOUT}ms "
            f"{'' if budget else f'and {SETTLE_EVENTS} events '}after healing, final write "
            f"{'applied at ' + str(self.final_index) if self.final_index else 'not committed'}; "
            + "; ".join(str(n.core.status()) for n in self.nodes.values() if n.core)
        )

    def _leader(self) -> int | None:
        for node in self.nodes.values():
            if node.core is not None and node.core.role == Role.LEADER:
                return node.id
        return None

    def _drain(self) -> None:
        """Let the clients' last operations finish or time out."""
        end = self.now + CLIENT_TIMEOUT + 1
        while self._queue and self._queue[0][0] <= end:
            self._step()

    def _check_history(self) -> None:
        """Check the resolved history; the observed one only when that is not enough.

        A linearization of the resolved history is one of the observed history
        too, so the cheap check usually settles it.
        """
        res = self.result
        resolved = self._check(self.history.resolved())
        if resolved.valid is True:
            res.linearizable = True
            return
        observed = self._check(res.history)
        res.linearizable = False if False in (resolved.valid, observed.valid) else observed.valid
        for verdict, which in ((observed, "observed"), (resolved, "resolved")):
            if verdict.valid is False:
                bad = next(k for k in verdict.keys if k.valid is False)
                why = bad.counterexample.explanation if bad.counterexample else ""
                res.violation = f"{which} history not linearizable on key {bad.key!r}: {why}"
                return

    def _check(self, ops: list[Op]) -> CheckResult:
        model = make_model("cas-register")
        return check_operations(model, pair(ops), time_limit=self.check_seconds, workers=1)


def simulate(
    seed: int,
    *,
    nodes: int = 3,
    steps: int = DEFAULT_STEPS,
    faults: Faults | str = "default",
    core_factory: CoreFactory = Raft,
    planner: Planner = plan_ready,
    check_seconds: float = CHECK_SECONDS,
    machine: str = "kv",
) -> SimResult:
    """Run one seeded simulation; never raises on a failure, reports it in the result.

    ``check_seconds`` bounds the linearizability check; past it the verdict is
    "unknown" (long runs pile up indeterminate writes, which the search pays for).
    """
    name = faults if isinstance(faults, str) else "custom"
    sim = Simulation(
        seed, nodes, PRESETS[faults] if isinstance(faults, str) else faults, core_factory, planner,
        machine,
    )
    sim.check_seconds = check_seconds
    sim.result.steps = steps
    sim.result.faults = name
    sim.result.machine = machine
    return sim.run(steps)


def _seed_range(text: str) -> range:
    if ":" in text:
        lo, hi = text.split(":", 1)
        return range(int(lo), int(hi))
    return range(int(text), int(text) + 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m store.raft.simulator", description=__doc__)
    ap.add_argument("--seeds", default="0:100", help="a seed S or a range LO:HI (default 0:100)")
    ap.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="events before healing")
    ap.add_argument("--faults", default="default", choices=sorted(PRESETS))
    ap.add_argument("--machine", default="kv", choices=sorted(MACHINES),
                    help="kv: a plain map; v3: the v3 state machine (txns, compactions)")
    ap.add_argument(
        "--check-seconds",
        type=float,
        default=CHECK_SECONDS,
        help="linearizability checker budget per run; past it the verdict is unknown",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print each run's fault log")
    args = ap.parse_args(argv)
    seeds = _seed_range(args.seeds)
    started = time.monotonic()
    failed: list[SimResult] = []
    unknown = 0
    totals = dict.fromkeys(
        ("events", "elections", "restarts", "compactions", "snapshots_installed", "dropped"), 0
    )
    ops = {"ok": 0, "fail": 0, "info": 0}
    for seed in seeds:
        res = simulate(
            seed,
            nodes=args.nodes,
            steps=args.steps,
            faults=args.faults,
            check_seconds=args.check_seconds,
            machine=args.machine,
        )
        for k in totals:
            totals[k] += getattr(res, k)
        for k in ops:
            ops[k] += res.ops[k]
        if args.verbose:
            print("\n".join(res.log))
        if not res.ok:
            failed.append(res)
            print(f"seed {seed}: FAILED: {res.violation}\n  replay: {res.replay()}", flush=True)
        elif res.linearizable is not True:
            unknown += 1
            print(f"seed {seed}: linearizability unknown (checker budget ran out)", flush=True)
    took = time.monotonic() - started
    print(
        f"{len(seeds)} seeds, {args.nodes} nodes, {args.faults} faults: {len(failed)} failed, "
        f"{unknown} unknown, in {took:.1f}s; "
        + ", ".join(f"{k} {v}" for k, v in totals.items())
        + f"; ops ok {ops['ok']} fail {ops['fail']} info {ops['info']}"
    )
    return 1 if failed else 2 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
