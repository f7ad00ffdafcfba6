"""The simulated nodes' state machine: a key-value map with write and compare-and-set.

Every command carries its request id and is applied at most once: the network
may duplicate a forwarded proposal, and the leader then appends it twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from store.raft.types import Entry, EntryType


@dataclass(frozen=True, slots=True)
class Command:
    req: int
    op: str  # "w" (write key value) or "c" (cas key old new)
    key: str
    value: int
    old: int = 0

    def encode(self) -> bytes:
        if self.op == "w":
            return f"{self.req} w {self.key} {self.value}".encode()
        return f"{self.req} c {self.key} {self.old} {self.value}".encode()

    @staticmethod
    def decode(data: bytes) -> Command:
        parts = data.decode().split()
        if parts[1] == "w":
            return Command(int(parts[0]), "w", parts[2], int(parts[3]))
        return Command(int(parts[0]), "c", parts[2], int(parts[4]), int(parts[3]))


@dataclass(frozen=True, slots=True)
class Applied:
    req: int
    ok: bool  # False: a cas whose expected value did not match


class KvMachine:
    __slots__ = ("applied", "data", "seen")

    compacts = False  # no compaction commands (sim.v3kv's machine has them)

    def __init__(self) -> None:
        self.applied = 0
        self.data: dict[str, int] = {}
        self.seen: set[int] = set()

    def apply(self, entry: Entry) -> Applied | None:
        """Apply the next entry; the outcome for its request, None if it had none."""
        self.applied = entry.index
        if entry.type != EntryType.NORMAL or not entry.data:
            return None
        cmd = Command.decode(entry.data)
        if cmd.req in self.seen:
            return None
        self.seen.add(cmd.req)
        if cmd.op == "w":
            self.data[cmd.key] = cmd.value
            return Applied(cmd.req, True)
        if self.data.get(cmd.key) == cmd.old:
            self.data[cmd.key] = cmd.value
            return Applied(cmd.req, True)
        return Applied(cmd.req, False)

    @staticmethod
    def encode(cmd: Command) -> bytes:
        return cmd.encode()

    @staticmethod
    def request_id(data: bytes) -> int:
        return Command.decode(data).req

    def read(self, key: str) -> int | None:
        return self.data.get(key)

    def serialize(self) -> bytes:
        doc = [self.applied, sorted(self.data.items()), sorted(self.seen)]
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, blob: bytes) -> KvMachine:
        applied, items, seen = json.loads(blob)
        kv = cls()
        kv.applied = applied
        kv.data = dict(items)
        kv.seen = set(seen)
        return kv
