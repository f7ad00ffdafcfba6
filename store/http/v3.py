"""etcd 3.4's v3 JSON gateway on the client port: /v3/kv/* and /v3/maintenance/status.

Every request is a POST with a JSON body (gateway.decode). Writes go through
Raft (Backend.propose_v3); reads are linearizable by default (a ReadIndex
barrier, then local state) and local with ``serializable``. Answers carry
grpc-gateway's headers: a success has Grpc-Metadata-Content-Type; an error the
gateway finds decoding has a Content-Length; one the server returns is streamed
with a gRPC trailer, byte for byte as etcd's gateway writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from store.http import responses as r
from store.http.backend import Backend
from store.http.request import Deferred, Request, Sink
from store.v3 import gateway, rules
from store.v3.command import V3Command
from store.v3.errors import V3Error
from store.v3.gateway import MemberIds, Status
from store.v3.messages import (
    RangeRequest,
    Response,
    TxnRequest,
    WriteRequest,
)

PREFIX = "/v3/"
VERSION = "3.4.23"
_GRPC_OK = b"Grpc-Metadata-Content-Type: application/grpc\r\n"
_TRAILER = b"Trailer: Grpc-Trailer-Content-Type\r\n"
_CHUNKED = b"Transfer-Encoding: chunked\r\n"
_TRAILER_END = b"0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n"


_DB_FLOOR = 20480  # an empty etcd 3.4 member's dbSize
_GO_BUFFER = 2048  # Go's bufferBeforeChunkingSize: a larger answer is sent chunked


def ok(req: Request, body: bytes) -> bytes:
    head = (r.status_line(req.version, 200), r.CORS, r.JSON, _GRPC_OK, r.date_line())
    if len(body) > _GO_BUFFER and req.version == "1.1":
        return b"".join((*head, _CHUNKED, req.tail, b"\r\n",
                         b"%x\r\n" % len(body), body, b"\r\n0\r\n\r\n"))
    return b"".join((*head, b"Content-Length: %d\r\n" % len(body), req.tail, b"\r\n", body))


def error(req: Request, err: V3Error) -> bytes:
    body = err.to_json()
    head = [r.status_line(req.version, err.status), r.CORS, r.JSON]
    if err.from_gateway or req.version != "1.1":
        head += [r.date_line(), b"Content-Length: %d\r\n" % len(body), req.tail, b"\r\n", body]
        return b"".join(head)
    head += [_TRAILER, r.date_line(), _CHUNKED, req.tail, b"\r\n",
             b"%x\r\n" % len(body), body, b"\r\n", _TRAILER_END]
    return b"".join(head)


class V3Handler:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.routes: dict[str, Callable[[Request], bytes | Deferred]] = {
            "/v3/kv/range": self.range,
            "/v3/kv/put": self.write(gateway.parse_put, rules.check_put),
            "/v3/kv/deleterange": self.write(gateway.parse_delete, rules.check_delete),
            "/v3/kv/txn": self.txn,
            "/v3/kv/compaction": self.write(gateway.parse_compaction, lambda _c: None),
            "/v3/maintenance/status": self.status,
        }

    def __call__(self, req: Request) -> bytes | Deferred:
        route = self.routes.get(req.path or "")
        if route is None:
            return r.plain_error(req.version, 404, "Not Found", req.tail, req.head)
        if req.method != "POST":
            return r.plain_error(req.version, 405, "Method Not Allowed", req.tail, req.head)
        try:
            return route(req)
        except V3Error as e:
            return error(req, e)

    # ---- answers --------------------------------------------------------------------

    def _ids(self) -> MemberIds:
        b = self.backend
        return MemberIds(b.cfg.cluster_id, b.member_id, b.raft_term)

    def _answer(self, req: Request, resp: Response | V3Error) -> bytes:
        if isinstance(resp, V3Error):
            return error(req, resp)
        return ok(req, gateway.encode(resp, self._ids()))

    # ---- reads ----------------------------------------------------------------------

    def range(self, req: Request) -> bytes | Deferred:
        rr: RangeRequest = gateway.decode(req.body, gateway.parse_range)
        rules.check_size(rr, self.backend.cfg.max_request_bytes)
        rules.check_range(rr)
        if rr.serializable and self.backend.caught_up:
            return self._read(req, lambda: self.backend.v3.range(rr))
        return Deferred(lambda sink: self._linearized(sink, req, lambda: self.backend.v3.range(rr)))

    def _read(self, req: Request, read: Callable[[], Response]) -> bytes:
        try:
            return self._answer(req, read())
        except V3Error as e:
            return error(req, e)

    async def _linearized(self, sink: Sink, req: Request, read: Callable[[], Response]) -> None:
        try:
            await self.backend.linearize_v3()
        except V3Error as e:
            sink.write(error(req, e))
            return
        sink.write(self._read(req, read))

    # ---- writes ---------------------------------------------------------------------

    def write(self, parse: Callable[[Any], WriteRequest],
              check: Callable[[Any], None]) -> Callable[[Request], bytes | Deferred]:
        def handle(req: Request) -> bytes | Deferred:
            w = gateway.decode(req.body, parse)
            rules.check_size(w, self.backend.cfg.max_request_bytes)
            check(w)
            return self._propose(req, w)
        return handle

    def _propose(self, req: Request, w: WriteRequest) -> bytes | Deferred:
        return Deferred(lambda sink: self._run_write(sink, req, w))

    async def _run_write(self, sink: Sink, req: Request, w: WriteRequest) -> None:
        try:
            resp: Response | V3Error = await self.backend.propose_v3(V3Command(w))
        except V3Error as e:
            resp = e
        sink.write(self._answer(req, resp))

    def txn(self, req: Request) -> bytes | Deferred:
        t: TxnRequest = gateway.decode(req.body, gateway.parse_txn)
        rules.check_size(t, self.backend.cfg.max_request_bytes)
        rules.check_txn(t, self.backend.cfg.max_txn_ops)
        if not rules.is_read_only(t):
            return self._propose(req, t)
        if _serializable(t) and self.backend.caught_up:
            return self._read(req, lambda: self.backend.v3.read_txn(t))
        b = self.backend
        return Deferred(lambda sink: self._linearized(sink, req, lambda: b.v3.read_txn(t)))

    # ---- maintenance ----------------------------------------------------------------

    def status(self, req: Request) -> bytes:
        gateway.decode(req.body, gateway.parse_status)
        b = self.backend
        # no bolt file here: what the keys and values take, on etcd's empty-file floor
        size = _DB_FLOOR + -(-b.v3.kv.stored_bytes // 4096) * 4096
        s = Status(VERSION, size, b.leader_id, b.raft_commit, b.raft_term, b.raft_index, size,
                   b.v3.revision)
        return ok(req, gateway.encode_status(s, self._ids()))


def _serializable(t: TxnRequest) -> bool:
    """etcd's isTxnSerializable: every range in it, in every branch, is serializable."""
    for op in (*t.success, *t.failure):
        if op.range is not None and not op.range.serializable:
            return False
        if op.txn is not None and not _serializable(op.txn):
            return False
    return True
