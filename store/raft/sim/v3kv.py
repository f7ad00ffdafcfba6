"""The simulated nodes' state machine run through the v3 API: the same client
operations as kv.KvMachine, written as the v3 requests a client would send and
applied by the real v3 state machine (store.v3) from its real log encoding.

A write is a txn putting the key; a cas is a txn comparing the key's VALUE and
putting it on success (ok: ``succeeded``); a read is a range. Compactions
(``compaction``) are Raft commands too, proposed without a client: they may
fail (an old or future revision), which changes nothing.
"""

from __future__ import annotations

import json

from store.raft.sim.kv import Applied, Command
from store.raft.types import Entry, EntryType
from store.v3 import command, snapshot
from store.v3.errors import V3Error
from store.v3.messages import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
    TxnResponse,
)
from store.v3.state import V3Store


def _put(key: str, value: int) -> RequestOp:
    return RequestOp(put=PutRequest(key.encode(), str(value).encode()))


class V3KvMachine:
    __slots__ = ("applied", "seen", "store")

    compacts = True

    def __init__(self) -> None:
        self.applied = 0
        self.store = V3Store()
        self.seen: set[int] = set()

    @staticmethod
    def encode(cmd: Command) -> bytes:
        if cmd.op == "w":
            req = TxnRequest(success=(_put(cmd.key, cmd.value),))
        else:
            cmp = Compare(CompareResult.EQUAL, CompareTarget.VALUE, cmd.key.encode(),
                          value=str(cmd.old).encode())
            req = TxnRequest((cmp,), (_put(cmd.key, cmd.value),))
        return command.encode(command.V3Command(req, cmd.req))

    @staticmethod
    def compaction(req: int, revision: int) -> bytes:
        return command.encode(command.V3Command(CompactionRequest(revision), req))

    @staticmethod
    def request_id(data: bytes) -> int:
        return command.decode(data).id

    @property
    def revision(self) -> int:
        return self.store.revision

    def apply(self, entry: Entry) -> Applied | None:
        self.applied = entry.index
        if entry.type != EntryType.NORMAL or not entry.data:
            return None
        cmd = command.decode(entry.data)
        if cmd.id in self.seen:
            return None
        self.seen.add(cmd.id)
        resp = self.store.apply(cmd.req)
        if isinstance(cmd.req, CompactionRequest):
            return None
        if isinstance(resp, V3Error):
            raise AssertionError(f"a client txn failed to apply: {resp!r}")
        assert isinstance(resp, TxnResponse)
        return Applied(cmd.id, resp.succeeded)

    def read(self, key: str) -> int | None:
        kvs = self.store.range(RangeRequest(key.encode())).kvs
        return int(kvs[0].value) if kvs else None

    def serialize(self) -> bytes:
        doc = [self.applied, snapshot.dump(self.store).decode(), sorted(self.seen)]
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, blob: bytes) -> V3KvMachine:
        applied, state, seen = json.loads(blob)
        m = cls()
        m.applied = applied
        m.store = snapshot.load(state.encode())
        m.seen = set(seen)
        return m
