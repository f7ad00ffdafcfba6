"""The Client protocol, and the keep-alive HTTP/1.1 connection clients speak over.

A client is what one logical process uses to turn an `Invocation` into a `Completion`
against one node (Jepsen's `jepsen.client`). It never retries: whether a request that
failed took effect is the outcome it reports (ok / fail / info).

`HttpConnection` is one keep-alive connection with one request in flight, on asyncio's
Protocol API with httptools' parser (the same parser our store serves with). It tells
the two kinds of failure apart that decide an outcome: `NotSent` (the connection could
not be made, so the request surely did nothing) and anything raised after the request
was written (a timeout, a reset: it may have taken effect). After a failed connect it
waits until `retry_after` has passed before it dials again: a client whose node is
down fails a few operations a second, not thousands (which would churn through keys
and bury the history in refusals).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import httptools

from harness.ops import Completion, Invocation

RETRY_AFTER_S = 0.2  # after a failed connect, before the next attempt


@dataclass(frozen=True, slots=True)
class Node:
    """Where one node of the system under test answers clients."""

    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class Client(Protocol):
    """One process's connection to one node; `invoke` never raises for a failed request."""

    async def open(self, node: Node) -> None: ...

    async def invoke(self, op: Invocation) -> Completion: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""


class NotSent(ConnectionError):
    """The request was never sent: the connection could not be opened."""


class _ResponseReader(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._response: HttpResponse | None = None
        self._body: list[bytes] = []
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ConnectionError(f"malformed HTTP response: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed before the response ended"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._response = HttpResponse(0)
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        self._response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        response = self._response
        if response is None:
            return
        response.status = self._parser.get_status_code()
        response.body = b"".join(self._body)
        self.keep_alive = self._parser.should_keep_alive()
        self._response = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to host:port; one request at a time.

    `request` raises NotSent when it could not connect (refused, unreachable, connect
    timeout), TimeoutError when no whole response came within the timeout, and
    ConnectionError when the connection broke after the request went out. After any
    of these the connection is closed; the next request opens a new one.
    """

    def __init__(self, host: str, port: int, connect_timeout: float = 2.0,
                 retry_after: float = RETRY_AFTER_S) -> None:
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self._failed_at: float | None = None  # the loop's time of the last failed connect
        self._reader: _ResponseReader | None = None
        self.host_header = f"{host}:{port}"

    async def _connect(self) -> _ResponseReader:
        loop = asyncio.get_running_loop()
        if self._failed_at is not None:
            wait = self._failed_at + self.retry_after - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, reader = await loop.create_connection(_ResponseReader, self.host, self.port)
        except (OSError, TimeoutError) as e:
            self._failed_at = loop.time()
            raise NotSent(f"cannot connect to {self.host_header}: {e or type(e).__name__}") from e
        self._failed_at = None
        return reader

    async def request(self, data: bytes, timeout: float) -> HttpResponse:
        """Send one whole request (head and body, already encoded) and read its response."""
        reader = self._reader
        if reader is None or reader.closed:
            reader = self._reader = await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[HttpResponse] = loop.create_future()
        reader.waiter = waiter
        timer = loop.call_later(timeout, _expire, waiter, timeout)
        try:
            assert reader.transport is not None
            reader.transport.write(data)
            response = await waiter
        except BaseException:
            self.close()
            raise
        finally:
            timer.cancel()
            reader.waiter = None
        if not reader.keep_alive:
            self.close()
        return response

    def close(self) -> None:
        if self._reader is not None and self._reader.transport is not None:
            self._reader.transport.abort()
        self._reader = None


def _expire(waiter: asyncio.Future[HttpResponse], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no response within {timeout:g} s"))
