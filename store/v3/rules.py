"""etcd's checks on a request before it is served or proposed (v3rpc/key.go)."""

from __future__ import annotations

from store.v3 import errors
from store.v3.messages import (
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)

DEFAULT_MAX_TXN_OPS = 128


def check_range(r: RangeRequest) -> None:
    if not r.key:
        raise errors.empty_key()


def check_put(r: PutRequest) -> None:
    if not r.key:
        raise errors.empty_key()
    if r.ignore_value and r.value:
        raise errors.value_provided()
    if r.ignore_lease and r.lease:
        raise errors.lease_provided()


def check_delete(r: DeleteRangeRequest) -> None:
    if not r.key:
        raise errors.empty_key()


def check_txn(r: TxnRequest, max_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
    """checkTxnRequest, then checkIntervals on both branches, as etcd's kvServer.Txn."""
    _check_txn(r, max_ops)
    _intervals(r.success)
    _intervals(r.failure)


def _check_txn(r: TxnRequest, max_ops: int) -> None:
    opc = max(len(r.compare), len(r.success), len(r.failure))
    if opc > max_ops:
        raise errors.too_many_ops()
    for c in r.compare:
        if not c.key:
            raise errors.empty_key()
    for op in (*r.success, *r.failure):
        _check_op(op, max_ops - opc)


def _check_op(op: RequestOp, max_ops: int) -> None:
    if op.range is not None:
        check_range(op.range)
    elif op.put is not None:
        check_put(op.put)
    elif op.delete_range is not None:
        check_delete(op.delete_range)
    elif op.txn is not None:
        _check_txn(op.txn, max_ops)
    else:
        raise errors.key_not_found()


# ---- checkIntervals: no key written twice in one transaction -------------------------

_INF = None  # an interval end of "" is +infinity in etcd's affine string intervals


def _lt(a: bytes, b: bytes | None) -> bool:
    """a < b where b None is +infinity."""
    return b is None or a < b


class _Dels:
    """The key intervals deleted in a transaction (etcd's adt.IntervalTree, as a list)."""

    def __init__(self) -> None:
        self.spans: list[tuple[bytes, bytes | None]] = []

    def add(self, d: DeleteRangeRequest) -> None:
        if d.range_end:
            self.spans.append((d.key, d.range_end or _INF))
        else:
            self.spans.append((d.key, d.key + b"\x00"))

    def hits(self, key: bytes) -> bool:
        # [key, key\0) meets [b, e) iff b <= key < e (etcd compares "\0" literally:
        # a delete whose range_end is "\0" meets no put, as in etcd)
        return any(b <= key and _lt(key, e) for b, e in self.spans)

    def union(self, other: _Dels) -> None:
        self.spans.extend(other.spans)


def _intervals(reqs: tuple[RequestOp, ...]) -> tuple[set[bytes], _Dels]:
    dels = _Dels()
    for op in reqs:
        if op.delete_range is not None:
            dels.add(op.delete_range)
    puts: set[bytes] = set()
    for op in reqs:
        if op.txn is None:
            continue
        puts_then, dels_then = _intervals(op.txn.success)
        puts_else, dels_else = _intervals(op.txn.failure)
        for k in puts_then:
            if k in puts or dels.hits(k):
                raise errors.duplicate_key()
            puts.add(k)
        for k in puts_else:
            if (k in puts and k not in puts_then) or dels.hits(k):
                raise errors.duplicate_key()
            puts.add(k)
        dels.union(dels_then)
        dels.union(dels_else)
    for op in reqs:
        if op.put is None:
            continue
        k = op.put.key
        if k in puts or dels.hits(k):
            raise errors.duplicate_key()
        puts.add(k)
    return puts, dels


def is_read_only(r: TxnRequest) -> bool:
    """etcd's isTxnReadonly: only ranges, in every branch."""
    for op in (*r.success, *r.failure):
        if op.range is not None:
            continue
        if op.txn is not None and is_read_only(op.txn):
            continue
        return False
    return True


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _bytes_field(b: bytes) -> int:
    return 1 + _varint_len(len(b)) + len(b) if b else 0


def request_size(req: object) -> int:
    """About the size of the request marshalled as etcd's protobuf (which etcd
    compares with --max-request-bytes): its bytes fields and a few bytes each else."""
    if isinstance(req, PutRequest):
        return _bytes_field(req.key) + _bytes_field(req.value) + 8
    if isinstance(req, DeleteRangeRequest):
        return _bytes_field(req.key) + _bytes_field(req.range_end) + 4
    if isinstance(req, RangeRequest):
        return _bytes_field(req.key) + _bytes_field(req.range_end) + 16
    if isinstance(req, TxnRequest):
        n = 0
        for c in req.compare:
            n += _bytes_field(c.key) + _bytes_field(c.range_end) + _bytes_field(c.value or b"") + 12
        for op in (*req.success, *req.failure):
            inner = request_size(op.range or op.put or op.delete_range or op.txn)
            n += 1 + _varint_len(inner) + inner + 2
        return n
    return 16
