"""The v3 state machine: etcd's applierV3backend over our MVCC index.

``apply`` takes a replicated write (put, delete range, txn, compaction) and
returns its response or the V3Error etcd's apply would give; ``range`` and
read-only transactions are answered from local state with ``read``. Every
member applies the same writes in the same order, so they agree.
"""

from __future__ import annotations

from store.v3 import errors, rules
from store.v3.gosort import go_sort
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
    RequestOp,
    Response,
    ResponseOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
    WriteRequest,
)
from store.v3.mvcc import MVCC, range_end_bound

_SORT_KEYS = {
    SortTarget.KEY: lambda kv: kv.key,
    SortTarget.VERSION: lambda kv: kv.version,
    SortTarget.CREATE: lambda kv: kv.create_revision,
    SortTarget.MOD: lambda kv: kv.mod_revision,
    SortTarget.VALUE: lambda kv: kv.value,
}


class _Write:
    """A write transaction: its main revision and whether it changed anything."""

    __slots__ = ("changed", "main")

    def __init__(self, main: int) -> None:
        self.main = main
        self.changed = False

    @property
    def read_rev(self) -> int:
        return self.main if self.changed else self.main - 1


class V3Store:
    def __init__(self) -> None:
        self.kv = MVCC()

    @property
    def revision(self) -> int:
        return self.kv.revision

    @property
    def compact_revision(self) -> int:
        return self.kv.compact_revision

    # ---- reads (no Raft) -----------------------------------------------------------

    def range(self, r: RangeRequest) -> RangeResponse:
        return self._range(r, None)

    def read_txn(self, r: TxnRequest) -> TxnResponse:
        """A read-only transaction, answered from local state."""
        path = self._path(r, None)
        self._check_ranges(r, path, self.kv.revision)
        resp = TxnResponse(Header(self.kv.revision), path[0])
        self._run(r, path, resp, None)
        resp.header.revision = self.kv.revision
        return resp

    # ---- writes (applied in log order) ----------------------------------------------

    def apply(self, req: WriteRequest) -> Response | errors.V3Error:
        try:
            if isinstance(req, PutRequest):
                w = _Write(self.kv.revision + 1)
                if req.lease:
                    raise errors.lease_not_found()  # etcd checks the lease first here
                self._check_put(req, w)
                resp: Response = self._put(req, w)
            elif isinstance(req, DeleteRangeRequest):
                w = _Write(self.kv.revision + 1)
                resp = self._delete(req, w)
            elif isinstance(req, TxnRequest):
                return self._txn(req)
            else:
                return self._compact(req)
        except errors.V3Error as e:
            return e
        if w.changed:
            self.kv.revision = w.main
        return resp

    def _compact(self, req: CompactionRequest) -> CompactionResponse | errors.V3Error:
        try:
            self.kv.compact(req.revision)
        except errors.V3Error as e:
            return e
        return CompactionResponse(Header(self.kv.revision))

    def _txn(self, r: TxnRequest) -> TxnResponse:
        w = _Write(self.kv.revision + 1)
        path = self._path(r, w)
        self._check_puts(r, path, w)
        self._check_ranges(r, path, self.kv.revision)
        resp = TxnResponse(Header(), path[0])
        self._run(r, path, resp, w)
        if w.changed:
            self.kv.revision = w.main
        resp.header.revision = self.kv.revision
        return resp

    # ---- the pieces -------------------------------------------------------------------

    def _range(self, r: RangeRequest, w: _Write | None) -> RangeResponse:
        filtered = bool(r.min_mod_revision or r.max_mod_revision
                        or r.min_create_revision or r.max_create_revision)
        limit = r.limit
        if r.sort_order is not SortOrder.NONE or filtered:
            limit = 0
        if limit > 0:
            limit += 1
        rr = self.kv.range(r.key, range_end_bound(r.range_end), r.revision, limit,
                           r.count_only, None if w is None else w.read_rev)
        kvs = rr.kvs
        if filtered:
            kvs = [kv for kv in kvs
                   if (not r.max_mod_revision or kv.mod_revision <= r.max_mod_revision)
                   and (not r.min_mod_revision or kv.mod_revision >= r.min_mod_revision)
                   and (not r.max_create_revision or kv.create_revision <= r.max_create_revision)
                   and (not r.min_create_revision or kv.create_revision >= r.min_create_revision)]
        order = r.sort_order
        if r.sort_target is not SortTarget.KEY and order is SortOrder.NONE:
            order = SortOrder.ASCEND
        if order is not SortOrder.NONE:
            # Go's sort.Sort, not a stable sort: equal keys come out in etcd's order
            key = _SORT_KEYS[r.sort_target]
            kvs = list(kvs)
            if order is SortOrder.DESCEND:
                go_sort(kvs, lambda x, y: key(y) < key(x))
            else:
                go_sort(kvs, lambda x, y: key(x) < key(y))
        more = False
        if r.limit > 0 and len(kvs) > r.limit:
            kvs = kvs[: r.limit]
            more = True
        if r.keys_only:
            kvs = [KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"",
                            kv.lease) for kv in kvs]
        return RangeResponse(Header(rr.rev), kvs, more, rr.count)

    def _check_put(self, r: PutRequest, w: _Write) -> None:
        if (r.ignore_value or r.ignore_lease) and self.kv.at(r.key, w.read_rev) is None:
            raise errors.key_not_found()
        if r.lease:
            raise errors.lease_not_found()  # no leases are ever granted here

    def _put(self, r: PutRequest, w: _Write) -> PutResponse:
        value, lease = r.value, r.lease
        if r.ignore_value or r.ignore_lease:
            prev = self.kv.at(r.key, w.read_rev)
            assert prev is not None  # checked before
            if r.ignore_value:
                value = prev.value
            if r.ignore_lease:
                lease = prev.lease
        prev = self.kv.put(r.key, value, w.main, lease)
        w.changed = True
        return PutResponse(Header(w.main), prev if r.prev_kv else None)

    def _delete(self, r: DeleteRangeRequest, w: _Write) -> DeleteRangeResponse:
        gone = self.kv.delete(r.key, range_end_bound(r.range_end), w.main)
        if gone:
            w.changed = True
        return DeleteRangeResponse(Header(w.read_rev), len(gone), gone if r.prev_kv else [])

    def _compare(self, c: Compare, rev: int) -> bool:
        kvs = self.kv.range(c.key, range_end_bound(c.range_end), current=rev).kvs
        if not kvs:
            if c.target is CompareTarget.VALUE:
                return False  # a missing key's value compares with nothing
            return _compare_kv(c, None)
        return all(_compare_kv(c, kv) for kv in kvs)

    def _path(self, r: TxnRequest, w: _Write | None) -> list[bool]:
        """etcd's compareToPath: each (nested) txn's outcome on the branch taken."""
        rev = self.kv.revision
        ok = all(self._compare(c, rev) for c in r.compare)
        path = [ok]
        for op in r.success if ok else r.failure:
            if op.txn is not None:
                path += self._path(op.txn, w)
        return path

    def _walk(self, r: TxnRequest, path: list[bool], i: int = 0) -> tuple[list[RequestOp], int]:
        ops = []
        for op in r.success if path[i] else r.failure:
            ops.append(op)
            if op.txn is not None:
                inner, i = self._walk(op.txn, path, i + 1)
                ops += inner
        return ops, i

    def _check_puts(self, r: TxnRequest, path: list[bool], w: _Write) -> None:
        if rules.is_read_only(r):
            return
        for op in self._walk(r, path)[0]:
            if op.put is not None:
                self._check_put(op.put, w)

    def _check_ranges(self, r: TxnRequest, path: list[bool], rev: int) -> None:
        for op in self._walk(r, path)[0]:
            g = op.range
            if g is None or g.revision == 0 or g.revision == rev:
                continue
            if g.revision > rev:
                raise errors.future_rev()
            if g.revision < self.kv.compact_revision:
                raise errors.compacted()

    def _run(self, r: TxnRequest, path: list[bool], resp: TxnResponse, w: _Write | None,
             at: int = 0) -> int:
        """Runs the branch ``path[at]`` chose; returns the last path index it used."""
        i = at
        for op in r.success if path[at] else r.failure:
            if op.range is not None:
                out: RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse
                out = self._range(op.range, w)
            elif op.put is not None:
                assert w is not None
                out = self._put(op.put, w)
            elif op.delete_range is not None:
                assert w is not None
                out = self._delete(op.delete_range, w)
            else:
                assert op.txn is not None
                out = TxnResponse(Header(), path[i + 1])
                i = self._run(op.txn, path, out, w, i + 1)
            resp.responses.append(ResponseOp(out))
        return i


def _compare_kv(c: Compare, kv: KeyValue | None) -> bool:
    t = c.target
    if t is CompareTarget.VALUE:
        result = _cmp(kv.value if kv else b"", c.value or b"")
    elif t is CompareTarget.CREATE:
        result = _cmp(kv.create_revision if kv else 0, c.create_revision or 0)
    elif t is CompareTarget.MOD:
        result = _cmp(kv.mod_revision if kv else 0, c.mod_revision or 0)
    elif t is CompareTarget.VERSION:
        result = _cmp(kv.version if kv else 0, c.version or 0)
    else:
        result = _cmp(kv.lease if kv else 0, c.lease or 0)
    res = c.result
    if res is CompareResult.EQUAL:
        return result == 0
    if res is CompareResult.NOT_EQUAL:
        return result != 0
    if res is CompareResult.GREATER:
        return result > 0
    return result < 0


def _cmp(a: bytes | int, b: bytes | int) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]
