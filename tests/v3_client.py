"""A small blocking client for the v3 JSON gateway, for tests (the harness has its own)."""

from __future__ import annotations

import base64
import http.client
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class V3Answer:
    status: int
    body: dict[str, Any]

    @property
    def revision(self) -> int:
        return int(self.body.get("header", {}).get("revision", 0))


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def call(url: str, path: str, obj: dict[str, Any], timeout: float = 10.0) -> V3Answer:
    """POST ``obj`` to ``url`` + ``path``; raises OSError/HTTPException if no answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(obj),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return V3Answer(r.status, json.loads(r.read() or b"{}"))
    finally:
        conn.close()
