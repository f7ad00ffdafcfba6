"""A simulated node: its core (None while crashed), disk, state machine, and the
client requests waiting on it."""

from __future__ import annotations

from store.raft.core import Raft
from store.raft.plan import Durable
from store.raft.sim.disk import Disk
from store.raft.sim.history import ClientOp
from store.raft.sim.kv import KvMachine
from store.raft.sim.v3kv import V3KvMachine

Machine = KvMachine | V3KvMachine


class SimNode:
    __slots__ = (
        "core",
        "disk",
        "durable",
        "epoch",
        "id",
        "in_flight",
        "kv",
        "last_snapshot",
        "reads",
        "seen_commit",
        "waiting",
    )

    def __init__(self, node_id: int, kv: Machine) -> None:
        self.id = node_id
        self.core: Raft | None = None
        self.disk = Disk()
        self.durable = Durable()  # what the disk held after the last fsync
        self.kv: Machine = kv
        self.epoch = 0  # bumped by each crash: stale events for the old process are ignored
        self.in_flight = False
        self.last_snapshot = 0
        self.seen_commit = 0
        self.reads: list[tuple[int, bytes]] = []  # (read index, context) to serve once applied
        self.waiting: dict[int | bytes, ClientOp] = {}
