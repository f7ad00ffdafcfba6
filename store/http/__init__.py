"""The HTTP/1.1 server speaking etcd 3.4's v2 API (asyncio.Protocol + httptools)."""

from store.http.backend import Backend
from store.http.server import serve, shutdown

__all__ = ["Backend", "serve", "shutdown"]
