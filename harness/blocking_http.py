"""A blocking keep-alive HTTP/1.1 client, for tests and tools that look at raw answers.

The conformance tests compare etcd's and our store's answers header by header, and a
few tests and the store benchmark's thread mode want one plain connection per thread.
Operations with outcomes (ok / fail / info) go through `harness.etcd_v2` instead.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class KeepAliveClient:
    """One keep-alive HTTP/1.1 connection to one member. Not thread-safe: one per thread.

    Nothing is retried: a request that fails raises (OSError, http.client.HTTPException,
    TimeoutError) and the next request opens a fresh connection. Whether a failed write
    took effect is for the caller to decide.
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"need http://host:port, got {url!r}")
        self.url = url
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """`form` goes url-encoded in the body, `query` in the URL; `path` is sent as given."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        body = None
        sent = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn = self._conn
        conn.timeout = self.timeout if timeout is None else timeout
        try:
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            data = answer.read()
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        found = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, found, data)

    def get(self, key: str, **query: str) -> Response:
        return self.request("GET", keys_path(key), query=query or None)

    def put(self, key: str, value: str, **query: str) -> Response:
        return self.request("PUT", keys_path(key), query=query or None, form={"value": value})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> KeepAliveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def keys_path(key: str) -> str:
    """/v2/keys path of `key` ("a/b" or "/a/b"), percent-encoded but for slashes."""
    return "/v2/keys/" + urllib.parse.quote(key.lstrip("/"), safe="/")


def fetch_json(url: str, timeout: float = 1.0) -> Any:
    """GET url once on a fresh connection; its JSON body, or None on any failure or non-200."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        answer = conn.getresponse()
        body = answer.read()
        return json.loads(body) if answer.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
