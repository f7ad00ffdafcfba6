"""The v3 KV requests and responses, as etcd's etcdserverpb messages (fields we serve).

Keys and values are bytes. ``range_end`` keeps etcd's meaning: empty is one key,
``b"\\0"`` is every key from ``key`` on, anything else is the end, exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class SortOrder(IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareResult(IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class CompareTarget(IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int = 0


# ---- requests ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RangeRequest:
    key: bytes = b""
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


@dataclass(frozen=True, slots=True)
class PutRequest:
    key: bytes = b""
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@dataclass(frozen=True, slots=True)
class DeleteRangeRequest:
    key: bytes = b""
    range_end: bytes = b""
    prev_kv: bool = False


@dataclass(frozen=True, slots=True)
class Compare:
    result: CompareResult = CompareResult.EQUAL
    target: CompareTarget = CompareTarget.VERSION
    key: bytes = b""
    range_end: bytes = b""
    # target_union: at most one is set; which one is not checked against target (as etcd)
    version: int | None = None
    create_revision: int | None = None
    mod_revision: int | None = None
    value: bytes | None = None
    lease: int | None = None


@dataclass(frozen=True, slots=True)
class RequestOp:
    """One of the four, or none (an empty op, which etcd refuses)."""

    range: RangeRequest | None = None
    put: PutRequest | None = None
    delete_range: DeleteRangeRequest | None = None
    txn: TxnRequest | None = None


@dataclass(frozen=True, slots=True)
class TxnRequest:
    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


@dataclass(frozen=True, slots=True)
class CompactionRequest:
    revision: int = 0
    physical: bool = False


WriteRequest = PutRequest | DeleteRangeRequest | TxnRequest | CompactionRequest


# ---- responses ---------------------------------------------------------------------


@dataclass(slots=True)
class Header:
    """A response header. Nested responses in a txn carry only ``revision``; the
    top-level one gets the member's ids and term when it is answered."""

    revision: int = 0


@dataclass(slots=True)
class RangeResponse:
    header: Header
    kvs: list[KeyValue] = field(default_factory=list)
    more: bool = False
    count: int = 0


@dataclass(slots=True)
class PutResponse:
    header: Header
    prev_kv: KeyValue | None = None


@dataclass(slots=True)
class DeleteRangeResponse:
    header: Header
    deleted: int = 0
    prev_kvs: list[KeyValue] = field(default_factory=list)


@dataclass(slots=True)
class TxnResponse:
    header: Header
    succeeded: bool = False
    responses: list[ResponseOp] = field(default_factory=list)


@dataclass(slots=True)
class ResponseOp:
    response: RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse


@dataclass(slots=True)
class CompactionResponse:
    header: Header


Response = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse | CompactionResponse
