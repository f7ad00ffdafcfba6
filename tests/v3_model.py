"""A reference model of etcd's v3 KV semantics, written for obviousness, not speed:
the whole keyspace is copied at every revision. The property tests hold the
v3 state machine (store/v3) to it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from store.v3 import errors
from store.v3.messages import (
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Header,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseOp,
    TxnRequest,
    TxnResponse,
)


def _compare_kv(c: Compare, kv: KeyValue | None) -> bool:
    """etcd's compareKV, written out: a missing key compares as zeros."""
    got: bytes | int
    if c.target == CompareTarget.VALUE:
        got, want = (kv.value if kv else b""), (c.value or b"")
    else:
        attr = {CompareTarget.VERSION: "version", CompareTarget.CREATE: "create_revision",
                CompareTarget.MOD: "mod_revision", CompareTarget.LEASE: "lease"}[c.target]
        got, want = (getattr(kv, attr) if kv else 0), (getattr(c, attr) or 0)
    return {
        CompareResult.EQUAL: got == want,
        CompareResult.NOT_EQUAL: got != want,
        CompareResult.GREATER: got > want,  # type: ignore[operator]
        CompareResult.LESS: got < want,  # type: ignore[operator]
    }[c.result]


def in_range(k: bytes, key: bytes, end: bytes) -> bool:
    if not end:
        return k == key
    if end == b"\x00":
        return k >= key
    return key <= k < end


@dataclass
class Model:
    states: dict[int, dict[bytes, KeyValue]] = field(default_factory=lambda: {1: {}})
    rev: int = 1
    compacted: int = -1

    def read(self, r: RangeRequest, at: dict[bytes, KeyValue] | None = None,
             header_rev: int | None = None) -> RangeResponse | errors.V3Error:
        cur = self.rev if header_rev is None else header_rev
        if at is None or r.revision:
            if r.revision > cur:
                return errors.future_rev()
            rev = r.revision if r.revision > 0 else cur
            if rev < self.compacted:
                return errors.compacted()
            at = self.states[rev]
        kvs = sorted((kv for k, kv in at.items() if in_range(k, r.key, r.range_end)),
                     key=lambda kv: kv.key)
        count = len(kvs)
        more = False
        if r.count_only:
            kvs = []
        elif r.limit > 0 and len(kvs) > r.limit:
            kvs, more = kvs[: r.limit], True
        if r.keys_only:
            kvs = [replace(kv, value=b"") for kv in kvs]
        return RangeResponse(Header(cur), kvs, more, count)

    def _commit(self, state: dict[bytes, KeyValue]) -> None:
        self.rev += 1
        self.states[self.rev] = state

    def put(self, r: PutRequest) -> PutResponse:
        state = dict(self.states[self.rev])
        prev = self._put(state, r, self.rev + 1)
        self._commit(state)
        return PutResponse(Header(self.rev), prev if r.prev_kv else None)

    @staticmethod
    def _put(state: dict[bytes, KeyValue], r: PutRequest, main: int) -> KeyValue | None:
        prev = state.get(r.key)
        if prev is None:
            state[r.key] = KeyValue(r.key, main, main, 1, r.value)
        else:
            state[r.key] = KeyValue(r.key, prev.create_revision, main, prev.version + 1, r.value)
        return prev

    def delete(self, r: DeleteRangeRequest) -> DeleteRangeResponse:
        state = dict(self.states[self.rev])
        gone = self._delete(state, r)
        if gone:
            self._commit(state)
        return DeleteRangeResponse(Header(self.rev), len(gone), gone if r.prev_kv else [])

    @staticmethod
    def _delete(state: dict[bytes, KeyValue], r: DeleteRangeRequest) -> list[KeyValue]:
        gone = sorted((kv for k, kv in state.items() if in_range(k, r.key, r.range_end)),
                      key=lambda kv: kv.key)
        for kv in gone:
            del state[kv.key]
        return gone

    def compact(self, r: CompactionRequest) -> CompactionResponse | errors.V3Error:
        if r.revision <= self.compacted:
            return errors.compacted()
        if r.revision > self.rev:
            return errors.future_rev()
        self.compacted = r.revision
        return CompactionResponse(Header(self.rev))

    def _holds(self, c: Compare, cur: dict[bytes, KeyValue]) -> bool:
        kvs = [kv for k, kv in cur.items() if in_range(k, c.key, c.range_end)]
        if not kvs:
            return c.target != CompareTarget.VALUE and _compare_kv(c, None)
        return all(_compare_kv(c, kv) for kv in kvs)

    def _branch(self, r: TxnRequest, cur: dict[bytes, KeyValue]) -> tuple[bool, tuple]:
        ok = all(self._holds(c, cur) for c in r.compare)
        return ok, r.success if ok else r.failure

    def _bad_revision(self, r: TxnRequest, cur: dict[bytes, KeyValue]) -> errors.V3Error | None:
        for op in self._branch(r, cur)[1]:
            g = op.range
            if g is not None and g.revision not in (0, self.rev):
                if g.revision > self.rev:
                    return errors.future_rev()
                if g.revision < self.compacted:
                    return errors.compacted()
            if op.txn is not None and (bad := self._bad_revision(op.txn, cur)) is not None:
                return bad
        return None

    def txn(self, r: TxnRequest) -> TxnResponse | errors.V3Error:
        """A transaction the rules took (no key written twice). Every compare, nested
        ones too, sees the state before the transaction; its ops see its writes."""
        cur = self.states[self.rev]
        bad = self._bad_revision(r, cur)
        if bad is not None:
            return bad
        state = dict(cur)
        main = self.rev + 1
        changed = [False]
        resp = TxnResponse(Header())
        self._run(r, cur, state, main, changed, resp)
        if changed[0]:
            self._commit(state)
        resp.header.revision = self.rev
        return resp

    def _run(self, r: TxnRequest, cur: dict[bytes, KeyValue], state: dict[bytes, KeyValue],
             main: int, changed: list[bool], resp: TxnResponse) -> None:
        resp.succeeded, ops = self._branch(r, cur)
        for op in ops:
            out: RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse
            if op.range is not None:
                rr = self.read(op.range, state, main if changed[0] else main - 1)
                assert not isinstance(rr, errors.V3Error)
                out = rr
            elif op.put is not None:
                prev = self._put(state, op.put, main)
                changed[0] = True
                out = PutResponse(Header(main), prev if op.put.prev_kv else None)
            elif op.delete_range is not None:
                gone = self._delete(state, op.delete_range)
                changed[0] = changed[0] or bool(gone)
                out = DeleteRangeResponse(Header(main if changed[0] else main - 1), len(gone),
                                          gone if op.delete_range.prev_kv else [])
            else:
                assert op.txn is not None
                out = TxnResponse(Header())
                self._run(op.txn, cur, state, main, changed, out)
            resp.responses.append(ResponseOp(out))
