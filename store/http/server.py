"""The HTTP/1.1 server: one asyncio.Protocol and one httptools parser per connection.

Requests on a connection are handled one at a time and answered in order:
most GETs are answered while parsing, with no task; a request that must wait
(a write, a quorum read, a watch) runs as a task, and what is pipelined behind
it waits in a queue. Input is bounded: URL plus headers, header count, body
size (checked against Content-Length before any body byte is read, and
counted for chunked bodies), queued requests, and the write buffer (reading
pauses while the client does not read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections import deque

import httptools

from store.http import responses as r
from store.http.backend import Backend
from store.http.endpoints import Endpoints
from store.http.form import FormError, NotUTF8, unescape
from store.http.keys import ALLOW, PREFIX, KeysHandler
from store.http.request import Answer, Deferred, Request
from store.http.v3 import PREFIX as V3_PREFIX
from store.http.v3 import V3Handler
from store.v2.paths import clean

log = logging.getLogger("store.http")

MAX_HEADER_BYTES = 64 << 10  # request line + headers
MAX_HEADERS = 100
MAX_PIPELINE = 64  # answers owed on one connection before it stops reading
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP/1\.[01]\r?\n")
LINGER_S = 2.0  # how long a connection closed for bad input still drains what arrives
_KEYS_DIR = PREFIX + "/"
_MEMBERS_DIR = "/v2/members/"


class _Abort(Exception):
    """Raised inside a parser callback to stop parsing this connection."""


def _clean_http_path(p: str) -> str:
    """Go's ServeMux cleanPath: path.Clean, keeping a trailing slash."""
    np = clean(p)
    if p.endswith("/") and np != "/":
        np += "/"
    return np


def _needs_cleaning(p: str) -> bool:
    return "//" in p or "/." in p or not p.startswith("/")


class Router:
    """Which handler answers a parsed request (Go's ServeMux, with etcd's routes)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.keys = KeysHandler(backend)
        self.endpoints = Endpoints(backend)
        self.v3 = V3Handler(backend)

    def __call__(self, req: Request) -> Answer:
        if req.method == "OPTIONS":
            return r.options(req.version, req.tail)
        path = req.path
        if path is None:
            return self.keys(req)  # a key that is not UTF-8: the keys handler answers 400
        if _needs_cleaning(path):
            clean = _clean_http_path(path)
            if clean != path:
                location = clean + ("?" + req.query.decode("latin-1") if req.query else "")
                return r.redirect(req.version, location, req.method, req.tail)
        if path == PREFIX or path.startswith(_KEYS_DIR):
            return self.keys(req)
        handler = self.endpoints.exact.get(path)
        if handler is not None:
            return handler(req)
        if path.startswith(_MEMBERS_DIR):
            return self.endpoints.member(req, path[len(_MEMBERS_DIR) :])
        if path.startswith(V3_PREFIX):
            return self.v3(req)
        return r.not_found(req.version, req.tail, req.head)


class _Running:
    """The deferred answer a connection is waiting for; it writes straight through."""

    __slots__ = ("close", "conn", "task", "watch", "wrote")

    def __init__(self, conn: HttpConnection, close: bool, watch: bool) -> None:
        self.conn = conn
        self.close = close
        self.watch = watch
        self.wrote = False
        self.task: asyncio.Task[None] | None = None

    def write(self, data: bytes) -> None:
        self.wrote = True
        t = self.conn.transport
        if t is not None and not t.is_closing():
            t.write(data)

    async def drain(self) -> None:
        await self.conn._drain()


# A request parsed while an earlier one is still being answered, or a last answer.
_Queued = tuple[Request, bool] | bytes


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests are handled one after another, like Go's
    server: a request pipelined behind one that waits (a write, a quorum read, a
    watch) is parsed at once but handled only after that answer is written."""

    __slots__ = (
        "_blen",
        "_body",
        "_closing",
        "_ctype",
        "_drain_waiter",
        "_eof",
        "_expect",
        "_hcount",
        "_host",
        "_hsize",
        "_len",
        "_queue",
        "_read_paused",
        "_running",
        "_url",
        "_write_paused",
        "counted",
        "last_active",
        "parser",
        "server",
        "transport",
    )

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._running: _Running | None = None
        self._queue: deque[_Queued] = deque()
        self._closing = False  # no more requests are taken
        self._eof = False
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.last_active = 0.0
        self.counted = False  # holds a place under the server's ConnectionLimit
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._hsize = 0
        self._hcount = 0
        self._host = False
        self._ctype = b""
        self._expect = False
        self._len = -1
        self._body: list[bytes] = []
        self._blen = 0

    # ---- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limit = self.server.limit
        if limit is not None and not limit.take(self.server.loop.time()):
            # Past the limit: drop it now (a reset frees the descriptor at once),
            # so that the WAL, snapshots and peers always find one.
            self._closing = True
            transport.abort()
            return
        self.counted = limit is not None
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.server.conns.add(self)
        self.last_active = self.server.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self.counted:
            self.counted = False
            assert self.server.limit is not None
            self.server.limit.give_back()
        self.server.conns.discard(self)
        running, self._running = self._running, None
        if running is not None and running.task is not None:
            running.task.cancel()
        self._queue.clear()
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.last_active = self.server.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            if not isinstance(e.__context__, _Abort):
                log.exception("HTTP request handling failed")
                self._fail(r.bare(400))
        except httptools.HttpParserUpgrade:
            # Answered as plain HTTP/1.1 (as Go does); the parser stops here, so
            # the connection closes once the answers owed are written.
            self._fail(b"")
        except httptools.HttpParserInvalidMethodError:
            # Go takes any token as a method and etcd answers 405; httptools stops
            # at one it does not know, so the connection ends here. A line that is
            # no request line at all stays a 400, as in Go.
            if _REQUEST_LINE.match(data):
                self._fail(r.method_not_allowed("1.1", ALLOW, b"Connection: close\r\n", False))
            else:
                self._fail(r.bare(400))
        except httptools.HttpParserError as e:
            if "chunk" in str(e).lower():
                self._fail(r.bad_chunk(self.server.router.keys.cluster))
            else:
                self._fail(r.bare(400))

    def eof_received(self) -> bool | None:
        """The client sent all it will: answer what is owed, then close; but a client
        gone while watching is gone (Go's CloseNotify ends the watch)."""
        self._closing = True
        self._eof = True
        running = self._running
        if running is None or running.watch:
            return None
        return True

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ---- httptools callbacks ---------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._hsize += len(url)
        if self._hsize > MAX_HEADER_BYTES:
            self._fail(r.bare(431))
            raise _Abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._hcount += 1
        self._hsize += len(name) + len(value) + 4
        if self._hsize > MAX_HEADER_BYTES or self._hcount > MAX_HEADERS:
            self._fail(r.bare(431))
            raise _Abort()
        n = len(name)
        if n == 12 and name.lower() == b"content-type":
            self._ctype = value
        elif n == 14 and name.lower() == b"content-length":
            with contextlib.suppress(ValueError):
                self._len = int(value)
        elif n == 6 and name.lower() == b"expect":
            self._expect = value.lower() == b"100-continue"
        elif n == 4 and name.lower() == b"host":
            self._host = True

    def on_headers_complete(self) -> None:
        if not self._host and self.parser.get_http_version() == "1.1":
            self._fail(r.NO_HOST)
            raise _Abort()
        if self._len > self.server.max_body:
            self._too_large()
        if self._expect and self._len != 0 and self._running is None and not self._queue:
            assert self.transport is not None
            self.transport.write(r.CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._blen += len(body)
        if self._blen > self.server.max_body:
            self._too_large()
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closing:
            return
        parser = self.parser
        version = parser.get_http_version()
        keep_alive = parser.should_keep_alive()
        if version == "1.1":
            tail = b"" if keep_alive else b"Connection: close\r\n"
        else:
            version = "1.0"
            tail = b"Connection: keep-alive\r\n" if keep_alive else b""
        url = self._url
        if url[:1] != b"/" and url != b"*":
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                self._fail(r.bare(400))
                raise _Abort() from None
            raw_path, query = parsed.path or b"/", parsed.query or b""
        else:
            raw_path, _, query = url.partition(b"?")
        try:
            path: str | None = unescape(raw_path, plus=False)
        except FormError:
            self._fail(r.bare(400))
            raise _Abort() from None
        except NotUTF8:
            # Only a key is refused for that; any other such path is simply not found.
            path = None if raw_path.startswith(b"/v2/keys/") else raw_path.decode("latin-1")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req = Request(
            parser.get_method().decode("latin-1"), path, query, body, self._ctype, version, tail
        )
        self._reset()
        if not keep_alive:
            self._closing = True
        if self._running is not None or self._queue:
            self._queue.append((req, not keep_alive))
            self._update_reading()
        else:
            self._handle(req, not keep_alive)

    # ---- handling, one request at a time -----------------------------------

    def _handle(self, req: Request, close: bool) -> None:
        try:
            answer = self.server.router(req)
        except Exception:
            log.exception("HTTP handler failed")
            answer = r.http_error_json(req.version, 500, "Internal Server Error", req.tail, False)
        transport = self.transport
        assert transport is not None
        if isinstance(answer, bytes):
            transport.write(answer)
            if close:
                transport.close()
            return
        running = _Running(self, close or answer.close, answer.watch)
        self._running = running
        running.task = self.server.loop.create_task(self._run(running, answer, req.version))
        if answer.cleanup is not None:
            cleanup = answer.cleanup
            running.task.add_done_callback(lambda _t: cleanup())

    async def _run(self, running: _Running, answer: Deferred, version: str) -> None:
        try:
            await answer.run(running)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HTTP handler failed")
            if not running.wrote:
                running.write(r.http_error_json(version, 500, "Internal Server Error",
                                                b"Connection: close\r\n", False))
            running.close = True
        if self._running is not running:
            return
        self._running = None
        self.last_active = self.server.loop.time()
        transport = self.transport
        if running.close and transport is not None:
            self._closing = True
            transport.close()
            return
        self._next()

    def _next(self) -> None:
        """Handle what was parsed meanwhile, until an answer has to wait again."""
        queue = self._queue
        transport = self.transport
        while queue and self._running is None and transport is not None:
            item = queue.popleft()
            if isinstance(item, bytes):
                if item:
                    transport.write(item)
                self._close_lingering(transport)
                return
            req, close = item
            self._handle(req, close)
            if close:
                return
        if self._running is None and self._eof and transport is not None:
            transport.close()
            return
        self._update_reading()

    async def _drain(self) -> None:
        while self._write_paused and self.transport is not None:
            if self.transport.is_closing():
                return
            if self._drain_waiter is None or self._drain_waiter.done():
                self._drain_waiter = self.server.loop.create_future()
            await self._drain_waiter

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = self._write_paused or len(self._queue) >= MAX_PIPELINE
        if pause != self._read_paused:
            self._read_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _too_large(self) -> None:
        version = self.parser.get_http_version()
        self._fail(r.too_large(version if version == "1.0" else "1.1",
                               self.server.router.keys.cluster))
        raise _Abort()

    def _fail(self, answer: bytes) -> None:
        """Answer after the ones owed, then close: the stream cannot be trusted."""
        if self._closing:
            return  # the connection already ends after what it owes
        self._closing = True
        if self._running is not None or self._queue:
            self._queue.append(answer)
            return
        transport = self.transport
        if transport is not None:
            if answer:
                transport.write(answer)
            self._close_lingering(transport)

    def _close_lingering(self, transport: asyncio.Transport) -> None:
        """Close after a request that cannot be trusted without losing the answer.

        Closing at once while the client is still sending (a body over the limit)
        makes the kernel reset the connection, and the client never reads the 413.
        So: send what is owed and a FIN, discard what still arrives for a moment
        (data_received drops input once closing), then close."""
        self._closing = True
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        self.server.loop.call_later(LINGER_S, transport.close)

    def idle(self) -> bool:
        return self._running is None and not self._queue


class ConnectionLimit:
    """How many client connections a member keeps open, over all its listeners.

    etcd keeps 150 descriptors for itself (its client listener is limited to the
    descriptor limit less 150); a member that lets clients take them all fails its
    next snapshot or WAL segment with EMFILE and must stop. Connections past the
    limit are reset as soon as they are accepted, and the log says so (at most
    every ``LOG_EVERY_S``).
    """

    RESERVE = 150
    LOG_EVERY_S = 10.0

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError("a connection limit must be positive")
        self.maximum = maximum
        self.open = 0
        self.refused = 0
        self._logged_at: float | None = None
        self._refused_logged = 0

    @classmethod
    def for_descriptors(cls, fd_limit: int, reserve: int = RESERVE) -> ConnectionLimit:
        """The limit for a process that may open ``fd_limit`` descriptors."""
        return cls(max(fd_limit - reserve, fd_limit // 2, 1))

    def take(self, now: float) -> bool:
        if self.open < self.maximum:
            self.open += 1
            return True
        self.refused += 1
        if self._logged_at is None or now - self._logged_at >= self.LOG_EVERY_S:
            log.warning(
                "refusing client connections: %d open, the limit (--max-client-connections, "
                "or the descriptor limit less %d) is %d; %d refused since the last report",
                self.open,
                self.RESERVE,
                self.maximum,
                self.refused - self._refused_logged,
            )
            self._logged_at = now
            self._refused_logged = self.refused
        return False

    def give_back(self) -> None:
        self.open -= 1


class _Server:
    """What every connection of one listening socket shares."""

    def __init__(
        self,
        backend: Backend,
        max_body: int,
        loop: asyncio.AbstractEventLoop,
        limit: ConnectionLimit | None = None,
    ) -> None:
        self.router = Router(backend)
        self.max_body = max_body
        self.loop = loop
        self.limit = limit
        self.conns: set[HttpConnection] = set()
        self.listener: asyncio.Server | None = None

    def sweep(self, idle_timeout: float) -> None:
        """Close connections idle for longer than ``idle_timeout`` (then again later)."""
        if self.listener is None or not self.listener.is_serving():
            return
        cutoff = self.loop.time() - idle_timeout
        for c in list(self.conns):
            if c.idle() and c.last_active < cutoff and c.transport is not None:
                c.transport.close()
        self.loop.call_later(max(1.0, idle_timeout / 4), self.sweep, idle_timeout)


_STATES: weakref.WeakKeyDictionary[asyncio.Server, _Server] = weakref.WeakKeyDictionary()


async def shutdown(server: asyncio.Server) -> None:
    """Stop listening, drop every connection and the answers it still owes."""
    server.close()
    state = _STATES.pop(server, None)
    if state is not None:
        for c in list(state.conns):
            if c.transport is not None:
                c.transport.abort()
    await server.wait_closed()


async def serve(
    backend: Backend,
    host: str,
    port: int,
    *,
    max_body: int = 8 << 20,
    idle_timeout: float | None = None,
    limit: ConnectionLimit | None = None,
) -> asyncio.Server:
    """Listen on host:port and answer etcd v2 requests against ``backend``.

    ``max_body`` bounds a request body (413 above it); ``idle_timeout``, if set,
    closes connections that have owed no answer and sent nothing for that long;
    ``limit`` (which listeners may share) resets connections past it.
    """
    loop = asyncio.get_running_loop()
    state = _Server(backend, max_body, loop, limit)
    server = await loop.create_server(lambda: HttpConnection(state), host, port, backlog=1024)
    state.listener = server
    _STATES[server] = state
    if idle_timeout is not None:
        loop.call_later(max(1.0, idle_timeout / 4), state.sweep, idle_timeout)
    return server
