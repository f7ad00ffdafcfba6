"""etcd 3.4's JSON gateway (grpc-gateway v1 with golang/protobuf's jsonpb).

Requests: proto or camelCase field names, bytes as base64, int64 as a number or
a quoted number, enums by name or number, unknown fields refused. Responses:
proto field names, int64 as strings, bytes as base64, zero values left out
(but an empty message that is set stays: ``"header":{}``). Errors use Go's
messages, so that answers match etcd's byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from store.v3 import errors
from store.v3.gobase64 import CorruptInput
from store.v3.gobase64 import decode as b64decode
from store.v3.goscan import GoSyntaxError, first_value_end
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
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)

# ---- decoding --------------------------------------------------------------------------

_INT64 = (-(1 << 63), (1 << 63) - 1)
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _type_error(value: Any, gotype: str) -> errors.V3Error:
    kind = _json_kind(value)
    return errors.invalid(f"json: cannot unmarshal {kind} into Go value of type {gotype}")


@dataclass(frozen=True, slots=True)
class GoNumber:
    """A JSON number with a fraction or exponent, as written (Go reports it so)."""

    text: str


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | GoNumber):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise _type_error(value, "[]uint8")
    raw = value.encode("utf-8", "surrogatepass")
    # Canonical base64 (what every client sends) decodes alike in C; Go's decoder,
    # in Python, only for the rest (newlines, odd bits, errors and their offsets).
    with contextlib.suppress(binascii.Error):
        fast = binascii.a2b_base64(raw, strict_mode=True)
        if binascii.b2a_base64(fast, newline=False) == raw:
            return fast
    try:
        return b64decode(raw)
    except CorruptInput as e:
        raise errors.invalid(str(e)) from None


def _int64(raw: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if value is None:
            return 0
        text = raw_number(value)
        if isinstance(text, errors.V3Error):
            raise text
        if not _INTEGER.fullmatch(text):
            if isinstance(value, GoNumber) or _NUMBER.fullmatch(text):
                raise errors.invalid(
                    f"json: cannot unmarshal number {text} into Go value of type {raw}"
                )
            raise errors.invalid(_number_syntax(text))
        n = int(text)
        if not _INT64[0] <= n <= _INT64[1]:
            raise errors.invalid(
                f"json: cannot unmarshal number {text} into Go value of type {raw}"
            )
        return n

    def raw_number(value: Any) -> str | errors.V3Error:
        if isinstance(value, bool):
            return _type_error(value, raw)
        if isinstance(value, int):
            return str(value)
        if isinstance(value, GoNumber):
            return value.text
        if isinstance(value, str):
            return value  # jsonpb strips the quotes and reads what is inside
        return _type_error(value, raw)

    return parse


def _number_syntax(text: str) -> str:
    try:
        end = first_value_end(text.encode())
    except GoSyntaxError as e:
        return str(e)
    if end is None:
        return "unexpected end of JSON input"
    return f"invalid character {text[end]!r} after top-level value"


def _bool(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(value, "bool")
    return value


def _enum(cls: type[IntEnum], goname: str) -> Callable[[Any], IntEnum]:
    def parse(value: Any) -> IntEnum:
        if value is None:
            return cls(0)
        if isinstance(value, str):
            try:
                return cls[value]
            except KeyError:
                raise errors.invalid(f'unknown value "{value}" for enum {goname}') from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, goname)
        try:
            return cls(value)
        except ValueError:
            return cls(0)  # an unknown number: proto3 keeps it; we read it as the default
    return parse


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # proto name
    camel: str  # its JSON name
    attr: str  # the dataclass field
    parse: Callable[[Any], Any]


def _f(name: str, parse: Callable[[Any], Any], attr: str = "") -> _Field:
    head, *rest = name.split("_")
    return _Field(name, head + "".join(p.title() for p in rest), attr or name, parse)


def _message(goname: str, fields: list[_Field], build: Callable[..., Any]) -> Callable[[Any], Any]:
    # each accepted name -> (the field's position, the field)
    names = {n: (i, f) for i, f in enumerate(fields) for n in (f.name, f.camel)}

    def parse(value: Any) -> Any:
        if value is None:
            return build()
        if not isinstance(value, dict):
            raise _type_error(value, "map[string]json.RawMessage")
        # jsonpb's order: fields in declaration order, the camelCase name winning when
        # both are sent; unknown fields ignored (grpc-gateway's AllowUnknownFields)
        found = []
        for key, raw in value.items():
            hit = names.get(key)
            if hit is None:
                continue
            f = hit[1]
            if key != f.camel and f.camel in value:
                continue
            found.append((hit[0], f, raw))
        if len(found) > 1:
            found.sort(key=lambda x: x[0])
        return build(**{f.attr: f.parse(raw) for _, f, raw in found})
    return parse


def _repeated(parse_one: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def parse(value: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise _type_error(value, "[]json.RawMessage")
        return tuple(parse_one(v) for v in value)
    return parse


_i64 = _int64("int64")

parse_range = _message("etcdserverpb.RangeRequest", [
    _f("key", _bytes), _f("range_end", _bytes), _f("limit", _i64), _f("revision", _i64),
    _f("sort_order", _enum(SortOrder, "etcdserverpb.RangeRequest_SortOrder")),
    _f("sort_target", _enum(SortTarget, "etcdserverpb.RangeRequest_SortTarget")),
    _f("serializable", _bool), _f("keys_only", _bool), _f("count_only", _bool),
    _f("min_mod_revision", _i64), _f("max_mod_revision", _i64),
    _f("min_create_revision", _i64), _f("max_create_revision", _i64),
], RangeRequest)  # fmt: skip

parse_put = _message("etcdserverpb.PutRequest", [
    _f("key", _bytes), _f("value", _bytes), _f("lease", _i64), _f("prev_kv", _bool),
    _f("ignore_value", _bool), _f("ignore_lease", _bool),
], PutRequest)  # fmt: skip

parse_delete = _message("etcdserverpb.DeleteRangeRequest", [
    _f("key", _bytes), _f("range_end", _bytes), _f("prev_kv", _bool),
], DeleteRangeRequest)  # fmt: skip

parse_compare = _message("etcdserverpb.Compare", [
    _f("result", _enum(CompareResult, "etcdserverpb.Compare_CompareResult")),
    _f("target", _enum(CompareTarget, "etcdserverpb.Compare_CompareTarget")),
    _f("key", _bytes), _f("range_end", _bytes),
    _f("version", _i64), _f("create_revision", _i64), _f("mod_revision", _i64),
    _f("value", _bytes), _f("lease", _i64),
], Compare)  # fmt: skip


def _txn(**kw: Any) -> TxnRequest:
    return TxnRequest(**kw)


def _parse_txn(value: Any) -> TxnRequest:
    return parse_txn(value)


_parse_op = _message("etcdserverpb.RequestOp", [
    _f("request_range", parse_range, "range"),
    _f("request_put", parse_put, "put"),
    _f("request_delete_range", parse_delete, "delete_range"),
    _f("request_txn", _parse_txn, "txn"),
], RequestOp)  # fmt: skip


parse_txn = _message("etcdserverpb.TxnRequest", [
    _f("compare", _repeated(parse_compare)),
    _f("success", _repeated(_parse_op)),
    _f("failure", _repeated(_parse_op)),
], _txn)  # fmt: skip

parse_compaction = _message("etcdserverpb.CompactionRequest", [
    _f("revision", _i64), _f("physical", _bool),
], CompactionRequest)  # fmt: skip

parse_status = _message("etcdserverpb.StatusRequest", [], lambda: None)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not JSON to Go


def decode(body: bytes, parse: Callable[[Any], Any]) -> Any:
    """The request in ``body`` (an empty body is the empty request, as the gateway's)."""
    # Well-formed JSON (nearly every request) is read in C; Go's scanner, in Python,
    # finds where the first value ends, or Go's message, for the rest.
    with contextlib.suppress(ValueError):
        value = json.loads(body, parse_float=GoNumber, parse_constant=_reject_constant)
        return parse(value)
    try:
        end = first_value_end(body)
    except GoSyntaxError as e:
        raise errors.invalid(str(e)) from None
    if end is None:
        return parse(None)
    try:
        value = json.loads(body[:end].decode("utf-8", "replace"), parse_float=GoNumber)
    except ValueError as e:  # what Go's scanner takes and Python's does not
        raise errors.invalid(str(e)) from None
    return parse(value)


# ---- encoding --------------------------------------------------------------------------

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _kv(kv: KeyValue) -> dict[str, Any]:
    out: dict[str, Any] = {"key": _b64(kv.key)}
    if kv.create_revision:
        out["create_revision"] = str(kv.create_revision)
    if kv.mod_revision:
        out["mod_revision"] = str(kv.mod_revision)
    if kv.version:
        out["version"] = str(kv.version)
    if kv.value:
        out["value"] = _b64(kv.value)
    if kv.lease:
        out["lease"] = str(kv.lease)
    return out


@dataclass(frozen=True, slots=True)
class MemberIds:
    """What a top-level header carries besides the revision."""

    cluster_id: int
    member_id: int
    raft_term: int


def _header(h: Header, ids: MemberIds | None) -> dict[str, str]:
    out = {}
    if ids is not None:
        out["cluster_id"] = str(ids.cluster_id)
        out["member_id"] = str(ids.member_id)
    if h.revision:
        out["revision"] = str(h.revision)
    if ids is not None and ids.raft_term:
        out["raft_term"] = str(ids.raft_term)
    return out


def _response(resp: Any, ids: MemberIds | None) -> dict[str, Any]:
    out: dict[str, Any] = {"header": _header(resp.header, ids)}
    if isinstance(resp, RangeResponse):
        if resp.kvs:
            out["kvs"] = [_kv(kv) for kv in resp.kvs]
        if resp.more:
            out["more"] = True
        if resp.count:
            out["count"] = str(resp.count)
    elif isinstance(resp, PutResponse):
        if resp.prev_kv is not None:
            out["prev_kv"] = _kv(resp.prev_kv)
    elif isinstance(resp, DeleteRangeResponse):
        if resp.deleted:
            out["deleted"] = str(resp.deleted)
        if resp.prev_kvs:
            out["prev_kvs"] = [_kv(kv) for kv in resp.prev_kvs]
    elif isinstance(resp, TxnResponse):
        if resp.succeeded:
            out["succeeded"] = True
        if resp.responses:
            out["responses"] = [_op(r.response) for r in resp.responses]
    else:
        assert isinstance(resp, CompactionResponse)
    return out


_OP_KEYS = {
    RangeResponse: "response_range",
    PutResponse: "response_put",
    DeleteRangeResponse: "response_delete_range",
    TxnResponse: "response_txn",
}


def _op(resp: Any) -> dict[str, Any]:
    return {_OP_KEYS[type(resp)]: _response(resp, None)}


def encode(resp: Any, ids: MemberIds) -> bytes:
    """A top-level response as the gateway writes it."""
    return _dumps(_response(resp, ids)).encode()


@dataclass(frozen=True, slots=True)
class Status:
    """/v3/maintenance/status's answer."""

    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    db_size_in_use: int
    revision: int


def encode_status(s: Status, ids: MemberIds) -> bytes:
    out: dict[str, Any] = {"header": _header(Header(s.revision), ids), "version": s.version}
    for name, value in (("dbSize", s.db_size), ("leader", s.leader), ("raftIndex", s.raft_index),
                        ("raftTerm", s.raft_term), ("raftAppliedIndex", s.raft_applied_index),
                        ("dbSizeInUse", s.db_size_in_use)):
        if value:
            out[name] = str(value)
    return _dumps(out).encode()
