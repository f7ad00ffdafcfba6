"""A single-member Backend for the HTTP tests: commands go straight to a V2Store.

Not shipped: the node driver (store/node.py) is the real Backend. This one has
no Raft, so raft_index counts the commands applied and the term stays 1; a
"sync" is applied on every request, as a leader's periodic SYNC would be.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from store.http.server import serve, shutdown
from store.v2.command import Command, sync
from store.v2.errors import EtcdError
from store.v2.event import Event
from store.v2.store import V2Store

MEMBER_ID = "8e9e05c52164694d"
T = TypeVar("T")


class DirectBackend:
    def __init__(self, cluster_id: str = "cdf818194e3a8c32", client_url: str = "") -> None:
        self.store = V2Store()
        self.cluster_id = cluster_id
        self.client_url = client_url
        self._applied = 0
        self.healthy = True
        self.leader = True
        self.fail_with: EtcdError | None = None  # make propose/linearize fail, as without quorum

    @property
    def raft_index(self) -> int:
        return self._applied

    @property
    def raft_term(self) -> int:
        return 1

    def _apply(self, cmd: Command) -> Event | EtcdError | None:
        self._applied += 1
        return self.store.apply(cmd)

    async def propose(self, cmd: Command) -> Event:
        if self.fail_with is not None:
            raise self.fail_with
        if self.store.has_ttl_keys():
            self._apply(sync(time.time()))
        result = self._apply(cmd)
        if isinstance(result, EtcdError):
            raise result
        assert result is not None
        return result

    async def linearize(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def stats_self(self) -> dict:
        return {
            "name": "s1",
            "id": MEMBER_ID,
            "state": "StateLeader" if self.leader else "StateFollower",
            "leaderInfo": {"leader": MEMBER_ID if self.leader else ""},
            "recvAppendRequestCnt": 0,
            "sendAppendRequestCnt": 0,
        }

    def stats_leader(self) -> dict | None:
        return {"leader": MEMBER_ID, "followers": {}} if self.leader else None

    def members(self) -> list[dict]:
        return [
            {
                "id": MEMBER_ID,
                "name": "s1",
                "peerURLs": ["http://127.0.0.1:2380"],
                "clientURLs": [self.client_url] if self.client_url else [],
            }
        ]

    def health(self) -> bool:
        return self.healthy


class ServerThread:
    """``serve()`` on its own event loop in a thread, on a free port in 20000-32000."""

    def __init__(self, backend: DirectBackend, **serve_kw: object) -> None:
        self.backend = backend
        self.serve_kw = serve_kw
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> int:
        self._thread.start()
        first = 20000 + (os.getpid() * 7919) % 12000
        for i in range(12000):
            port = 20000 + (first - 20000 + i) % 12000
            fut = asyncio.run_coroutine_threadsafe(self._listen(port), self.loop)
            try:
                fut.result(10)
            except OSError:
                continue
            self.port = port
            self.backend.client_url = f"http://127.0.0.1:{port}"
            return port
        raise RuntimeError("no free port in 20000-32000")

    async def _listen(self, port: int) -> None:
        self._server = await serve(self.backend, "127.0.0.1", port, **self.serve_kw)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (the store is not thread-safe)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(shutdown(self._server), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
