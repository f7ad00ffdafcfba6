"""etcd's checks on a request before it is served or proposed (v3rpc/key.go)."""

from __future__ import annotations

from store.v3 import errors
from store.v3.messages import (
    CompactionRequest,
    Compare,
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


def _varint(n: int) -> int:
    """Bytes of a protobuf varint (a negative int64 takes ten)."""
    if n < 0:
        return 10
    return max(1, (n.bit_length() + 6) // 7)


def _b(tag: int, v: bytes) -> int:
    return tag + _varint(len(v)) + len(v) if v else 0


def _i(tag: int, v: int) -> int:
    return tag + _varint(v) if v else 0


def _msg(tag: int, size: int) -> int:
    return tag + _varint(size) + size


def proto_size(req: object) -> int:
    """The request's size as etcd's protobuf message, which gRPC holds to its limit."""
    if isinstance(req, RangeRequest):
        return (_b(1, req.key) + _b(1, req.range_end) + _i(1, req.limit) + _i(1, req.revision)
                + _i(1, req.sort_order) + _i(1, req.sort_target) + 2 * req.serializable
                + 2 * req.keys_only + 2 * req.count_only + _i(1, req.min_mod_revision)
                + _i(1, req.max_mod_revision) + _i(1, req.min_create_revision)
                + _i(1, req.max_create_revision))
    if isinstance(req, PutRequest):
        return (_b(1, req.key) + _b(1, req.value) + _i(1, req.lease) + 2 * req.prev_kv
                + 2 * req.ignore_value + 2 * req.ignore_lease)
    if isinstance(req, DeleteRangeRequest):
        return _b(1, req.key) + _b(1, req.range_end) + 2 * req.prev_kv
    if isinstance(req, TxnRequest):
        return (sum(_msg(1, _compare_size(c)) for c in req.compare)
                + sum(_msg(1, _op_size(op)) for op in (*req.success, *req.failure)))
    if isinstance(req, CompactionRequest):
        return _i(1, req.revision) + 2 * req.physical
    raise TypeError(f"not a v3 request: {req!r}")


def _compare_size(c: Compare) -> int:
    n = _i(1, c.result) + _i(1, c.target) + _b(1, c.key) + _b(2, c.range_end)
    # a target_union member that is set counts even when it is zero
    for v in (c.version, c.create_revision, c.mod_revision, c.lease):
        if v is not None:
            n += 1 + _varint(v)
    if c.value is not None:
        n += 1 + _varint(len(c.value)) + len(c.value)
    return n


def _op_size(op: RequestOp) -> int:
    inner = op.range or op.put or op.delete_range or op.txn
    return 0 if inner is None else _msg(1, proto_size(inner))


GRPC_OVERHEAD = 512 << 10  # etcd's allowance over --max-request-bytes for a gRPC message
_RAFT_HEADER = 13  # InternalRaftRequest's header (a request id) and field tag, about


def check_size(req: object, max_request_bytes: int) -> None:
    """etcd's two limits: gRPC's on any message, then the Raft proposal's on writes."""
    size = proto_size(req)
    limit = max_request_bytes + GRPC_OVERHEAD
    if size > limit:
        raise errors.V3Error(errors.RESOURCE_EXHAUSTED,
                             f"grpc: received message larger than max ({size} vs. {limit})")
    if isinstance(req, RangeRequest) or (isinstance(req, TxnRequest) and is_read_only(req)):
        return
    if size + _varint(size) + _RAFT_HEADER > max_request_bytes:
        raise errors.too_large()
