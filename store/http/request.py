"""What a handler gets, and what it may answer besides ready bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Request:
    method: str
    path: str | None  # percent-decoded; None when the bytes are not UTF-8
    query: bytes
    body: bytes
    content_type: bytes
    version: str  # "1.1" or "1.0"
    tail: bytes  # the Connection header line the answer needs, usually b""

    @property
    def head(self) -> bool:
        return self.method == "HEAD"


class Sink(Protocol):
    """Where a deferred answer goes; the connection keeps answers in request order."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None:
        """Wait while the client is not reading (long streams call it)."""
        ...


@dataclass(slots=True)
class Deferred:
    """An answer that needs to wait: ``run`` writes it to the sink, then returns.
    ``cleanup`` runs when it ends, even if it never started (connection lost);
    ``close`` ends the connection after it (a body without a length); a ``watch``
    ends when the client stops sending (Go's CloseNotify), other answers do not."""

    run: Callable[[Sink], Awaitable[None]]
    cleanup: Callable[[], None] | None = None
    close: bool = False
    watch: bool = False


Answer = bytes | Deferred
