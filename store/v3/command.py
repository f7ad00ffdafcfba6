"""v3 writes in the Raft log: one JSON object, the request in the gateway's shape.

    {"v3": "put"|"delete_range"|"txn"|"compaction", "id": N, "req": {...}}

v2 commands are JSON arrays (store.v2.command), so the first byte tells them
apart (``is_v3``). The request is written with proto field names, base64 bytes
and numeric enums, and read back with the gateway's own parsers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from store.v3 import gateway
from store.v3.messages import (
    Compare,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
    WriteRequest,
)


@dataclass(frozen=True, slots=True)
class V3Command:
    req: WriteRequest
    id: int = 0


def is_v3(data: bytes) -> bool:
    return data[:1] == b"{"


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _b(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _range(r: RangeRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"key": _b(r.key)}
    for name in ("range_end",):
        if getattr(r, name):
            out[name] = _b(getattr(r, name))
    for name in ("limit", "revision", "sort_order", "sort_target", "min_mod_revision",
                 "max_mod_revision", "min_create_revision", "max_create_revision",
                 "serializable", "keys_only", "count_only"):
        v = getattr(r, name)
        if v:
            out[name] = v if isinstance(v, bool) else int(v)
    return out


def _put(r: PutRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"key": _b(r.key), "value": _b(r.value)}
    for name in ("lease", "prev_kv", "ignore_value", "ignore_lease"):
        v = getattr(r, name)
        if v:
            out[name] = v
    return out


def _delete(r: DeleteRangeRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"key": _b(r.key), "range_end": _b(r.range_end)}
    if r.prev_kv:
        out["prev_kv"] = True
    return out


def _compare(c: Compare) -> dict[str, Any]:
    out: dict[str, Any] = {"result": int(c.result), "target": int(c.target), "key": _b(c.key),
                           "range_end": _b(c.range_end)}
    for name in ("version", "create_revision", "mod_revision", "lease"):
        v = getattr(c, name)
        if v is not None:
            out[name] = v
    if c.value is not None:
        out["value"] = _b(c.value)
    return out


def _op(op: RequestOp) -> dict[str, Any]:
    if op.range is not None:
        return {"request_range": _range(op.range)}
    if op.put is not None:
        return {"request_put": _put(op.put)}
    if op.delete_range is not None:
        return {"request_delete_range": _delete(op.delete_range)}
    if op.txn is not None:
        return {"request_txn": txn_obj(op.txn)}
    return {}


def txn_obj(r: TxnRequest) -> dict[str, Any]:
    return {
        "compare": [_compare(c) for c in r.compare],
        "success": [_op(o) for o in r.success],
        "failure": [_op(o) for o in r.failure],
    }


def request_obj(req: WriteRequest | RangeRequest) -> tuple[str, dict[str, Any]]:
    """The request's kind and its gateway-shaped JSON object."""
    if isinstance(req, RangeRequest):
        return "range", _range(req)
    if isinstance(req, PutRequest):
        return "put", _put(req)
    if isinstance(req, DeleteRangeRequest):
        return "delete_range", _delete(req)
    if isinstance(req, TxnRequest):
        return "txn", txn_obj(req)
    return "compaction", {"revision": req.revision, "physical": req.physical}


_PARSERS = {
    "put": gateway.parse_put,
    "delete_range": gateway.parse_delete,
    "txn": gateway.parse_txn,
    "compaction": gateway.parse_compaction,
}


def encode(cmd: V3Command, id: int | None = None) -> bytes:
    """``id``, if given, is written in place of ``cmd.id`` (the proposer's, without
    copying the command)."""
    kind, obj = request_obj(cmd.req)
    return _dumps({"v3": kind, "id": cmd.id if id is None else id, "req": obj}).encode()


def decode(data: bytes) -> V3Command:
    """The inverse of :func:`encode`; raises ValueError on foreign bytes."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("v3") not in _PARSERS:
        raise ValueError("not an encoded v3 command")
    return V3Command(_PARSERS[doc["v3"]](doc["req"]), int(doc["id"]))
