"""/v2/keys: etcd's parseKeyRequest, the request-to-command mapping, and the answers.

A default GET reads the member's local store (possibly stale, as in etcd); a
quorum=true GET waits for the backend's ReadIndex barrier first; wait=true
registers a watch at once and streams its event(s) as chunks; PUT, POST and
DELETE become one Command each, mapped the way etcd's v2 applier maps them.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from store.http import responses as r
from store.http.backend import Backend
from store.http.form import (
    Form,
    NotUTF8,
    first,
    is_form_type,
    parse_bool,
    parse_query,
    parse_uint,
)
from store.http.request import Answer, Deferred, Request, Sink
from store.v2.command import Command
from store.v2.errors import (
    INDEX_NAN,
    INVALID_FIELD,
    INVALID_FORM,
    PREV_VALUE_REQUIRED,
    REFRESH_TTL_REQUIRED,
    REFRESH_VALUE,
    TTL_NAN,
    EtcdError,
)
from store.v2.event import COMPARE_AND_SWAP, CREATE, SET, UPDATE, Event
from store.v2.paths import clean
from store.v2.watch import Watcher

PREFIX = "/v2/keys"
METHODS = frozenset({"HEAD", "GET", "PUT", "POST", "DELETE"})
ALLOW = b"HEAD,GET,PUT,POST,DELETE"
_FORM_METHODS = frozenset({"PUT", "POST", "PATCH"})
_NO_VALUE_ACTIONS = frozenset({SET, COMPARE_AND_SWAP, CREATE, UPDATE})
# The longest key taken, in UTF-8 bytes once cleaned (etcd's server drops request
# lines of about 5 KB and more without an answer; ours says why).
MAX_KEY_BYTES = 4096
# Go computes now + ttl seconds as an int64 of nanoseconds; larger TTLs overflow there.
MAX_TTL = (1 << 63) // 1_000_000_000


_encoder: ThreadPoolExecutor | None = None


def _encoder_thread() -> ThreadPoolExecutor:
    """One thread that turns directory listings into JSON, off the event loop."""
    global _encoder
    if _encoder is None:
        _encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="json")
    return _encoder


def _field_error(code: int, cause: str) -> EtcdError:
    return EtcdError(code, cause, 0)


@dataclass(slots=True)
class KeyRequest:
    method: str
    path: str
    value: str = ""
    dir: bool = False
    prev_value: str = ""
    prev_index: int = 0
    prev_exist: bool | None = None
    wait: bool = False
    wait_index: int = 0
    recursive: bool = False
    sorted: bool = False
    quorum: bool = False
    stream: bool = False
    ttl: int | None = None
    refresh: bool | None = None
    no_value_on_success: bool = False


def _bool(form: Form, name: str) -> bool:
    values = form.get(name)
    if values is None:
        return False
    try:
        return parse_bool(values[0])
    except ValueError:
        raise _field_error(INVALID_FIELD, f'invalid value for "{name}"') from None


def _uint(form: Form, name: str, code: int) -> int:
    values = form.get(name)
    if values is None:
        return 0
    try:
        return parse_uint(values[0])
    except ValueError:
        raise _field_error(code, f'invalid value for "{name}"') from None


def read_form(req: Request) -> Form:
    """Go's ParseForm: a form body's pairs first, then the query string's."""
    form: Form = {}
    err = None
    try:
        if req.body and req.method in _FORM_METHODS and is_form_type(req.content_type):
            err = parse_query(req.body, form)
        if req.query:
            err = parse_query(req.query, form) if err is None else err
    except NotUTF8:
        raise _field_error(INVALID_FORM, "invalid UTF-8 in form") from None
    if err is not None:
        raise _field_error(INVALID_FORM, err)
    return form


def parse_key_request(req: Request, key: str) -> KeyRequest:
    """etcd's parseKeyRequest, check by check in its order. Raises EtcdError."""
    form = read_form(req) if (req.query or req.body) else {}
    kr = KeyRequest(req.method, key)
    if not form:
        return kr
    kr.prev_index = _uint(form, "prevIndex", INDEX_NAN)
    kr.wait_index = _uint(form, "waitIndex", INDEX_NAN)
    kr.recursive = _bool(form, "recursive")
    kr.sorted = _bool(form, "sorted")
    kr.wait = _bool(form, "wait")
    kr.dir = _bool(form, "dir")
    kr.quorum = _bool(form, "quorum")
    kr.stream = _bool(form, "stream")
    if kr.wait and req.method != "GET":
        raise _field_error(INVALID_FIELD, '"wait" can only be used with GET requests')
    kr.prev_value = first(form, "prevValue")
    if "prevValue" in form and kr.prev_value == "":
        raise _field_error(PREV_VALUE_REQUIRED, '"prevValue" cannot be empty')
    kr.no_value_on_success = _bool(form, "noValueOnSuccess")
    if first(form, "ttl"):
        ttl = _uint(form, "ttl", TTL_NAN)
        if ttl > MAX_TTL:
            raise _field_error(TTL_NAN, 'invalid value for "ttl"')
        kr.ttl = ttl
    if "prevExist" in form:
        try:
            kr.prev_exist = parse_bool(form["prevExist"][0])
        except ValueError:
            raise _field_error(INVALID_FIELD, "invalid value for prevExist") from None
    if "refresh" in form:
        try:
            kr.refresh = parse_bool(form["refresh"][0])
        except ValueError:
            raise _field_error(INVALID_FIELD, "invalid value for refresh") from None
        if kr.refresh:
            if first(form, "value"):
                raise _field_error(REFRESH_VALUE, "A value was provided on a refresh")
            if kr.ttl is None:
                raise _field_error(REFRESH_TTL_REQUIRED, "No TTL value set")
    kr.value = first(form, "value")
    return kr


def now_seconds() -> float:
    """The wall clock on a microsecond grid, so that now + ttl stays exact there."""
    return time.time_ns() // 1000 / 1_000_000


def to_command(kr: KeyRequest, now: float) -> Command:
    """etcd's applierV2 Put/Post/Delete choice of store call, as a Command."""
    expiration = None if kr.ttl is None else now + kr.ttl
    compare = kr.prev_index > 0 or kr.prev_value != ""
    if kr.method == "PUT":
        if kr.prev_exist is None:
            op = "cas" if compare else "set"
        elif kr.prev_exist:
            op = "cas" if compare else "update"
        else:
            op = "create"
    elif kr.method == "POST":
        op = "post"
    elif kr.method == "DELETE":
        op = "cad" if compare else "delete"
    else:  # pragma: no cover - reads never become commands
        raise ValueError(kr.method)
    return Command(
        op,
        kr.path,
        kr.value,
        kr.dir,
        kr.prev_value,
        kr.prev_index,
        kr.prev_exist,
        kr.recursive,
        expiration,
        bool(kr.refresh),
        now,
    )


class KeysHandler:
    """Answers /v2/keys requests against one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._cluster_id = ""
        self._cluster = b""

    @property
    def cluster(self) -> bytes:
        cid = self.backend.cluster_id
        if cid != self._cluster_id:
            self._cluster_id, self._cluster = cid, r.cluster_line(cid)
        return self._cluster

    def __call__(self, req: Request) -> Answer:
        if req.method not in METHODS:
            return r.method_not_allowed(req.version, ALLOW, req.tail, req.head)
        if req.path is None:
            return self.error(req, _field_error(INVALID_FORM, "invalid UTF-8 in key"))
        key = clean(req.path[len(PREFIX) :])
        if len(key) > MAX_KEY_BYTES // 4 and len(key.encode()) > MAX_KEY_BYTES:
            return self.error(
                req, _field_error(INVALID_FIELD, f"key is longer than {MAX_KEY_BYTES} bytes")
            )
        try:
            kr = parse_key_request(req, key)
        except EtcdError as err:
            return self.error(req, err)
        if req.method == "GET" or req.method == "HEAD":
            if kr.wait:
                return self._watch(req, kr)
            if kr.quorum and req.method == "GET":
                return Deferred(lambda sink: self._quorum_get(sink, req, kr))
            return self._get(req, kr)
        cmd = to_command(kr, now_seconds())
        return Deferred(lambda sink: self._propose(sink, req, cmd, kr.no_value_on_success))

    # ---- answers ----------------------------------------------------------

    def error(self, req: Request, err: EtcdError) -> bytes:
        return r.key_error(req.version, err, self.cluster, req.tail, req.head)

    def event(self, req: Request, ev: Event, no_value: bool = False) -> bytes:
        if no_value and ev.action in _NO_VALUE_ACTIONS:
            body = b'{"action":"%s"}\n' % ev.action.encode()
        else:
            body = ev.to_json() + b"\n"
        b = self.backend
        return r.key_event(
            req.version,
            201 if ev.is_created() else 200,
            self.cluster,
            ev.etcd_index,
            b.raft_index,
            b.raft_term,
            body,
            req.tail,
            req.head,
        )

    def _get(self, req: Request, kr: KeyRequest) -> Answer:
        try:
            ev = self.backend.store.get(kr.path, kr.recursive, kr.sorted, now=time.time())
        except EtcdError as err:
            return self.error(req, err)
        if ev.node.nodes:
            # A listing can be hundreds of MB: the view is taken now (a point in
            # time), its JSON is written in another thread, so Raft's ticks and
            # heartbeats on this loop do not wait behind it.
            b = self.backend
            raft = (b.raft_index, b.raft_term)
            return Deferred(lambda sink: self._send_listing(sink, req, ev, raft))
        return self.event(req, ev)

    async def _send_listing(
        self, sink: Sink, req: Request, ev: Event, raft: tuple[int, int]
    ) -> None:
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(_encoder_thread(), ev.to_json)
        head = r.key_event(
            req.version, 200, self.cluster, ev.etcd_index, *raft, b"", req.tail, req.head,
            length=len(body) + 1,
        )  # fmt: skip
        sink.write(head)
        if not req.head:
            sink.write(body)
            sink.write(b"\n")

    async def _quorum_get(self, sink: Sink, req: Request, kr: KeyRequest) -> None:
        try:
            await self.backend.linearize()
        except EtcdError as err:
            sink.write(self.error(req, err))
            return
        except Exception as exc:
            sink.write(self.error(req, EtcdError.raft_internal(str(exc))))
            return
        answer = self._get(req, kr)
        if isinstance(answer, Deferred):
            await answer.run(sink)
        else:
            sink.write(answer)

    async def _propose(self, sink: Sink, req: Request, cmd: Command, no_value: bool) -> None:
        try:
            ev = await self.backend.propose(cmd)
        except EtcdError as err:
            sink.write(self.error(req, err))
            return
        except Exception as exc:
            # etcd writes any other failure as a 300 with the error's text.
            sink.write(self.error(req, EtcdError.raft_internal(str(exc))))
            return
        sink.write(self.event(req, ev, no_value))

    def _watch(self, req: Request, kr: KeyRequest) -> Answer:
        # Registered now, before any later command can be applied.
        try:
            w = self.backend.store.watch(kr.path, kr.recursive, kr.stream, kr.wait_index)
        except EtcdError as err:
            return self.error(req, err)
        if req.version != "1.1":
            # HTTP/1.0 has no chunks: the body ends when the connection does.
            req.tail = b""
            return Deferred(lambda sink: self._stream(sink, req, w), w.remove, True, True)
        return Deferred(lambda sink: self._stream(sink, req, w), w.remove, watch=True)

    async def _stream(self, sink: Sink, req: Request, w: Watcher) -> None:
        b = self.backend
        sink.write(r.watch_head(req.version, self.cluster, w.start_index, b.raft_index,
                                b.raft_term, req.tail))
        chunked = req.version == "1.1"
        try:
            while True:
                ev = await w.next()
                if ev is None:
                    break
                body = ev.to_json() + b"\n"
                sink.write(b"%x\r\n%s\r\n" % (len(body), body) if chunked else body)
                if not w.stream:
                    break
                await sink.drain()
        except asyncio.CancelledError:
            w.remove()
            raise
        w.remove()
        if chunked:
            sink.write(b"0\r\n\r\n")
