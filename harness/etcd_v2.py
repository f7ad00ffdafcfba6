"""The etcd v2 client: operations as v2 keys requests, answers as outcomes.

One client for both systems under test (our store and etcd 3.4). The mapping from
operations to requests, and from answers to outcomes, is written as plain functions
(`encode`, `decode`, `undelivered`) with the connection outside them, so the rules
can be read and tested on their own:

| operation | request |
|---|---|
| `read` | `GET /v2/keys/K`, `quorum=true` unless reads are `local` (a directory: its values) |
| `write` v | `PUT value=v` |
| `cas` [old, new] | `PUT value=new&prevValue=old` |
| `create` v | `PUT value=v&prevExist=false` |
| `delete` | `DELETE` |
| `add` e (sets) | `PUT /v2/keys/K/e value=e`: one key per element |

Outcome rules (docs/harness.md):
- a 2xx answer: `ok` (a read of a missing key is `ok` with value null);
- a precondition failure (errorCode 100, 101, 105): `fail`, with its name as the error;
  any other 4xx: `fail` (refused, nothing applied);
- the connection could not be made: `fail` (never sent);
- a timeout, a connection lost after sending, a 5xx (errorCode 300) or any other
  answer: `info` for a write (it may have taken effect), `fail` for a read (a read
  changes nothing, so one that did not answer constrains nothing).

Values are written as text: integers as decimals, which read back as integers.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from checker.history import UNOBSERVED
from checker.models.etcd_errors import KEY_NOT_FOUND, PRECONDITION_FAILURES
from harness.client import HttpConnection, HttpResponse, Node, NotSent
from harness.ops import Completion, Invocation

ReadMode = Literal["quorum", "local"]
READ_FS = frozenset({"read"})
WRITE_FS = frozenset({"write", "cas", "create", "delete", "add"})
FS = READ_FS | WRITE_FS


class UnknownOperation(ValueError):
    pass


def keys_path(prefix: str, key: Any, element: Any = None) -> str:
    path = f"/v2/keys/{prefix.strip('/')}/{key}" if prefix.strip("/") else f"/v2/keys/{key}"
    if element is not None:
        path += f"/{element}"
    return urllib.parse.quote(path, safe="/")


def text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse(value: str) -> Any:
    """A stored value back as what was written: integers as int, anything else as text."""
    try:
        return int(value)
    except ValueError:
        return value


def encode(op: Invocation, host: str, prefix: str = "", reads: ReadMode = "quorum") -> bytes:
    """The whole HTTP/1.1 request for `op`."""
    f, value = op.f, op.value
    form: dict[str, str] | None = None
    query = ""
    method = "PUT"
    path = keys_path(prefix, op.key)
    if f == "read":
        method = "GET"
        params = {"recursive": "true", "sorted": "true"}
        if reads == "quorum" or op.final:
            params["quorum"] = "true"
        query = "?" + urllib.parse.urlencode(params)
    elif f == "write":
        form = {"value": text(value)}
    elif f == "cas":
        old, new = value
        form = {"value": text(new), "prevValue": text(old)}
    elif f == "create":
        form = {"value": text(value), "prevExist": "false"}
    elif f == "delete":
        method = "DELETE"
    elif f == "add":
        path = keys_path(prefix, op.key, text(value))
        form = {"value": text(value)}
    else:
        raise UnknownOperation(f"the etcd v2 client has no operation {f!r}; it knows {sorted(FS)}")
    head = f"{method} {path}{query} HTTP/1.1\r\nHost: {host}\r\n"
    if form is None:
        return (head + "\r\n").encode()
    body = urllib.parse.urlencode(form).encode()
    head += "Content-Type: application/x-www-form-urlencoded\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _read_value(node: dict[str, Any]) -> Any:
    if node.get("dir"):
        return sorted(
            (parse(child["value"]) for child in node.get("nodes", []) if "value" in child),
            key=lambda v: (isinstance(v, str), v),
        )
    return parse(node["value"])


def decode(op: Invocation, response: HttpResponse) -> Completion:
    """The outcome of an answer that arrived."""
    status = response.status
    try:
        body = json.loads(response.body) if response.body else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if 200 <= status < 300:
        if op.f == "read":
            node = body.get("node")
            if not isinstance(node, dict):
                return _undecided(op, {"status": status, "error": "answer without a node"})
            return Completion("ok", _read_value(node))
        return Completion("ok", op.value)
    code = body.get("errorCode")
    if op.f == "read" and code == KEY_NOT_FOUND:
        return Completion("ok", None)
    if code in PRECONDITION_FAILURES:
        return Completion("fail", op.value, PRECONDITION_FAILURES[code])
    error = {"status": status, "errorCode": code, "message": body.get("message")}
    if 400 <= status < 500:
        return Completion("fail", op.value, error)
    return _undecided(op, error)


def undelivered(op: Invocation, exc: BaseException) -> Completion:
    """The outcome of a request that got no answer."""
    if isinstance(exc, NotSent):
        return Completion("fail", op.value, "connection-refused")
    if isinstance(exc, TimeoutError):
        return _undecided(op, "timeout")
    return _undecided(op, type(exc).__name__)


def _undecided(op: Invocation, error: Any) -> Completion:
    if op.f in READ_FS:
        return Completion("fail", UNOBSERVED, error)
    return Completion("info", op.value, error)


@dataclass
class EtcdV2Client:
    """A `Client` for the etcd v2 keys API: our store and etcd alike."""

    timeout: float = 5.0
    reads: ReadMode = "quorum"
    prefix: str = "splitbrain"
    _conn: HttpConnection | None = None

    async def open(self, node: Node) -> None:
        self._conn = HttpConnection(node.host, node.port, connect_timeout=min(2.0, self.timeout))

    async def invoke(self, op: Invocation) -> Completion:
        conn = self._conn
        if conn is None:
            raise RuntimeError("invoke before open")
        request = encode(op, conn.host_header, self.prefix, self.reads)
        try:
            response = await conn.request(request, self.timeout)
        except (OSError, TimeoutError) as e:  # NotSent is a ConnectionError, an OSError
            return undelivered(op, e)
        return decode(op, response)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
