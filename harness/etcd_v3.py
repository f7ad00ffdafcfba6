"""The etcd v3 client: operations as requests to etcd's JSON gateway, answers as outcomes.

The gateway (`POST /v3/kv/range|put|txn`, `/v3/maintenance/status`) takes and gives
JSON with keys and values in base64 and int64s as strings; an error is
`{"error", "message", "code"}` (a gRPC code) with an HTTP status. What an operation
sends, and what an answer means, is written as plain functions (`*_request`,
`answered`, `refused`, `undelivered`) with the connection outside them, as in
etcd_v2.py:

- `read`: a range of K (`serializable` when reads are serializable; final reads never);
- `write` v: a put of K;
- `cas` [old, new], guarded by `value`: a txn comparing K's value to old, putting new;
- `cas` [old, new], guarded by `revision`: a range of K, whose value must be old (else
  `fail`), then a txn comparing K's mod_revision to the range's, putting new;
- `txn` of `r`/`append` micro-operations: read-only, one txn of ranges. Else a range of
  every key, then one txn whose compares guard every key's mod_revision (0: absent)
  and whose success branch reads the keys the transaction reads first and puts the new
  lists; a failed compare is a `fail` of the whole transaction (Jepsen's etcd append);
- `txn` of `r`/`w`: one txn, ranges of the keys read first and puts of each key's last
  write (blind writes, no compares).

Reads after the transaction's own write of a key see that write (computed here: etcd
returns one state per txn). Lists are stored as JSON text, register values as text
(integers as decimals, read back as integers).

Outcome rules (docs/harness.md):
- a 2xx answer: `ok` (a cas or guarded txn whose compare failed: `fail`);
- gRPC InvalidArgument, FailedPrecondition, OutOfRange, or a 4xx without a gRPC code
  (the gateway refused it): `fail`;
- the connection could not be made, or the timeout passed before the request was
  sent: `fail` (never sent); a read-before-write that got no answer: `fail` (nothing
  was written yet);
- Unavailable, DeadlineExceeded, "request timed out", "context deadline exceeded", any
  other error, a 5xx, a timeout or a connection lost after sending: `info` for anything
  that writes, `fail` for a read or a read-only txn.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from checker.history import UNOBSERVED
from harness.client import HttpConnection, HttpResponse, Node, NotSent
from harness.etcd_v2 import parse, text
from harness.ops import Completion, Invocation

ReadMode = Literal["linearizable", "serializable"]
READ_MODES: Final = ("linearizable", "serializable")
CasGuard = Literal["value", "revision"]
CAS_GUARDS: Final = ("value", "revision")
FS: Final = frozenset({"read", "write", "cas", "txn"})
# gRPC codes that say the request was refused before anything was applied
REFUSED_CODES: Final = {3: "InvalidArgument", 9: "FailedPrecondition", 11: "OutOfRange"}
COMPARE_FAILED: Final = "compare-failed"
CAS_MISMATCH: Final = "cas-mismatch"


class UnknownOperation(ValueError):
    pass


class TimeUp(NotSent):
    """The operation's timeout passed before one of its requests could be sent (after a
    slow read before a guarded write): that request was never sent."""


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    body: dict[str, Any]

    def encode(self, host: str) -> bytes:
        body = json.dumps(self.body, separators=(",", ":")).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body


@dataclass(frozen=True, slots=True)
class Version:
    """A key as a range saw it: its value (None: absent) and mod_revision (0: absent)."""

    value: Any
    mod_revision: int


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


def unb64(data: str) -> str:
    return base64.b64decode(data).decode()


def full_key(prefix: str, key: Any) -> str:
    return f"{prefix.strip('/')}/{key}" if prefix.strip("/") else str(key)


def range_op(key: str, serializable: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"key": b64(key)}
    if serializable:
        body["serializable"] = True
    return body


def put_op(key: str, value: str) -> dict[str, Any]:
    return {"key": b64(key), "value": b64(value)}


def range_request(key: str, serializable: bool) -> Request:
    return Request("/v3/kv/range", range_op(key, serializable))


def put_request(key: str, value: str) -> Request:
    return Request("/v3/kv/put", put_op(key, value))


def txn_request(compare: Sequence[dict[str, Any]], ranges: Sequence[str],
                puts: Sequence[tuple[str, str]], serializable: bool = False) -> Request:
    success: list[dict[str, Any]] = [{"request_range": range_op(k, serializable)}
                                     for k in ranges]
    success += [{"request_put": put_op(k, v)} for k, v in puts]
    body: dict[str, Any] = {"success": success}
    if compare:
        body["compare"] = list(compare)
    return Request("/v3/kv/txn", body)


def compare_value(key: str, value: str) -> dict[str, Any]:
    return {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}


def compare_mod_revision(key: str, revision: int) -> dict[str, Any]:
    return {"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


def status_request() -> Request:
    return Request("/v3/maintenance/status", {})


class BadAnswer(ValueError):
    """A 2xx answer whose body is not what the request gets."""


def body_of(response: HttpResponse) -> dict[str, Any]:
    try:
        body = json.loads(response.body) if response.body else {}
    except ValueError:
        raise BadAnswer("the answer is not JSON") from None
    if not isinstance(body, dict):
        raise BadAnswer("the answer is not a JSON object")
    return body


def version_of(range_response: dict[str, Any], decode: Any = parse) -> Version:
    """The one key a range response holds (or its absence)."""
    kvs = range_response.get("kvs") or []
    if not kvs:
        return Version(None, 0)
    kv = kvs[0]
    try:
        return Version(decode(unb64(kv.get("value", ""))), int(kv["mod_revision"]))
    except (KeyError, ValueError, TypeError) as e:
        raise BadAnswer(f"a range answer without a readable key: {e}") from None


def txn_ranges(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The range responses of a txn answer, in order."""
    return [r["response_range"] for r in body.get("responses") or [] if "response_range" in r]


def parse_list(stored: str) -> tuple[Any, ...]:
    value = json.loads(stored)
    if not isinstance(value, list):
        raise BadAnswer(f"a list-append key holds {stored!r}, not a list")
    return tuple(value)


def refused(op: Invocation, writes: bool, response: HttpResponse) -> Completion:
    """The outcome of a non-2xx answer."""
    try:
        body = body_of(response)
    except BadAnswer:
        body = {}
    code = body.get("code")
    message = body.get("message") or body.get("error")
    error = {"status": response.status, "code": code, "message": message}
    if code in REFUSED_CODES or (400 <= response.status < 500 and code is None):
        return Completion("fail", _failed_value(op), error)
    return undecided(op, writes, error)


def undelivered(op: Invocation, writes: bool, exc: BaseException) -> Completion:
    """The outcome of a request that got no answer."""
    if isinstance(exc, TimeUp):
        return Completion("fail", _failed_value(op), "timeout-before-sending")
    if isinstance(exc, NotSent):
        return Completion("fail", _failed_value(op), "connection-refused")
    if isinstance(exc, TimeoutError):
        return undecided(op, writes, "timeout")
    return undecided(op, writes, type(exc).__name__)


def undecided(op: Invocation, writes: bool, error: Any) -> Completion:
    if not writes:
        return Completion("fail", _failed_value(op), error)
    return Completion("info", op.value, error)


def _failed_value(op: Invocation) -> Any:
    return UNOBSERVED if op.f == "read" else op.value


def writes(op: Invocation) -> bool:
    if op.f == "txn":
        return any(m[0] != "r" for m in op.value)
    return op.f != "read"


@dataclass(frozen=True, slots=True)
class TxnPlan:
    """What a transaction reads from etcd and what it writes, with the micro-operations'
    reads filled in once the state it committed against is known."""

    micro: tuple[tuple[str, Any, Any], ...]
    keys: tuple[Any, ...]  # every key, in first-use order
    read_first: tuple[Any, ...]  # keys whose first micro-operation is a read
    appends: bool

    @classmethod
    def of(cls, value: Any) -> TxnPlan:
        if not isinstance(value, list | tuple) or not value:
            raise UnknownOperation(f"a txn's value must be a non-empty list of [f, key, value], "
                                   f"got {value!r}")
        micro = []
        for m in value:
            if not isinstance(m, list | tuple) or len(m) != 3 or m[0] not in ("r", "w", "append"):
                raise UnknownOperation(f"micro-operation {m!r}: expected [r|w|append, key, value]")
            micro.append((m[0], m[1], m[2]))
        fs = {m[0] for m in micro}
        if {"w", "append"} <= fs:
            raise UnknownOperation("a txn mixes w and append micro-operations")
        keys: list[Any] = []
        first: list[Any] = []
        for f, k, _ in micro:
            if k not in keys:
                keys.append(k)
                if f == "r":
                    first.append(k)
        return cls(tuple(micro), tuple(keys), tuple(first), "append" in fs)

    @property
    def read_only(self) -> bool:
        return all(f == "r" for f, _, _ in self.micro)

    def new_values(self, before: dict[Any, Any]) -> dict[Any, str]:
        """Each written key's stored text after the transaction, from the state before."""
        out: dict[Any, str] = {}
        lists = {k: list(before.get(k) or ()) for k in self.keys}
        for f, k, v in self.micro:
            if f == "append":
                lists[k].append(v)
                out[k] = json.dumps(lists[k], separators=(",", ":"))
            elif f == "w":
                out[k] = text(v)
        return out

    def completed(self, before: dict[Any, Any]) -> list[list[Any]]:
        """The micro-operations with every read filled in: a read sees `before` (the state
        the transaction committed against) and the transaction's own earlier writes."""
        state: dict[Any, Any] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in before.items()}
        for k in self.keys:
            state.setdefault(k, None)
        out: list[list[Any]] = []
        for f, k, v in self.micro:
            if f == "r":
                seen = state[k]
                out.append([f, k, list(seen) if isinstance(seen, list) else seen])
            elif f == "append":
                state[k] = [*(state[k] or []), v]
                out.append([f, k, v])
            else:
                state[k] = v
                out.append([f, k, v])
        return out


@dataclass
class EtcdV3Client:
    """A `Client` for etcd's v3 API through its JSON gateway: etcd 3.4 and our store."""

    timeout: float = 5.0
    reads: ReadMode = "linearizable"
    cas_guard: CasGuard = "value"
    lists: bool = False  # keys hold lists (list-append), not register values
    prefix: str = "splitbrain"
    _conn: HttpConnection | None = None

    async def open(self, node: Node) -> None:
        self._conn = HttpConnection(node.host, node.port, connect_timeout=min(2.0, self.timeout))

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _serializable(self, op: Invocation) -> bool:
        return self.reads == "serializable" and not op.final

    async def _send(self, request: Request, deadline: float) -> dict[str, Any] | HttpResponse:
        """The answer's JSON when 2xx, else the response; raises what the connection
        raises (NotSent, TimeoutError, ConnectionError) and BadAnswer."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("invoke before open")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeUp(f"{request.path}: the operation's {self.timeout:g} s had passed")
        response = await conn.request(request.encode(conn.host_header), left)
        if not 200 <= response.status < 300:
            return response
        return body_of(response)

    async def invoke(self, op: Invocation) -> Completion:
        if op.f not in FS:
            raise UnknownOperation(f"the etcd v3 client has no operation {op.f!r}; "
                                   f"it knows {sorted(FS)}")
        deadline = time.monotonic() + self.timeout
        w = writes(op)
        try:
            if op.f == "txn":
                return await self._txn(op, deadline)
            if op.f == "cas":
                return await self._cas(op, deadline)
            key = full_key(self.prefix, op.key)
            if op.f == "read":
                answer = await self._send(range_request(key, self._serializable(op)), deadline)
                if isinstance(answer, HttpResponse):
                    return refused(op, False, answer)
                return Completion("ok", version_of(answer).value)
            answer = await self._send(put_request(key, text(op.value)), deadline)
            if isinstance(answer, HttpResponse):
                return refused(op, True, answer)
            return Completion("ok", op.value)
        except BadAnswer as e:
            return undecided(op, w, str(e))
        except (OSError, TimeoutError) as e:
            return undelivered(op, w, e)

    async def _read_first(self, op: Invocation, keys: Sequence[Any], deadline: float,
                          decode: Any) -> dict[Any, Version] | Completion:
        """The keys' versions before a guarded write; a Completion (`fail`: nothing was
        written yet) when they cannot be read."""
        names = [full_key(self.prefix, k) for k in keys]
        try:
            answer = await self._send(txn_request((), names, (), self._serializable(op)),
                                      deadline)
        except BadAnswer as e:
            return Completion("fail", op.value, f"read before write: {e}")
        except (OSError, TimeoutError) as e:
            return Completion("fail", op.value, f"read before write: "
                              f"{undelivered(op, False, e).error}")
        if isinstance(answer, HttpResponse):
            return Completion("fail", op.value, refused(op, False, answer).error)
        ranges = txn_ranges(answer)
        if len(ranges) != len(keys):
            return Completion("fail", op.value, "read before write: a short answer")
        return {k: version_of(r, decode) for k, r in zip(keys, ranges, strict=True)}

    async def _cas(self, op: Invocation, deadline: float) -> Completion:
        old, new = op.value
        key = full_key(self.prefix, op.key)
        if self.cas_guard == "value":
            compare = [compare_value(key, text(old))]
        else:
            found = await self._read_first(op, [op.key], deadline, parse)
            if isinstance(found, Completion):
                return found
            if found[op.key].value != old:
                return Completion("fail", op.value, CAS_MISMATCH)
            compare = [compare_mod_revision(key, found[op.key].mod_revision)]
        answer = await self._send(txn_request(compare, (), [(key, text(new))]), deadline)
        if isinstance(answer, HttpResponse):
            return refused(op, True, answer)
        if not answer.get("succeeded"):
            return Completion("fail", op.value, CAS_MISMATCH)
        return Completion("ok", op.value)

    async def _txn(self, op: Invocation, deadline: float) -> Completion:
        plan = TxnPlan.of(op.value)
        if plan.appends and not self.lists:
            raise UnknownOperation("append micro-operations need a client made with lists")
        decode = parse_list if self.lists else parse
        compare: list[dict[str, Any]] = []
        before: dict[Any, Any] = {}
        if plan.appends:
            found = await self._read_first(op, plan.keys, deadline, decode)
            if isinstance(found, Completion):
                return found
            before = {k: v.value for k, v in found.items()}
            compare = [compare_mod_revision(full_key(self.prefix, k), v.mod_revision)
                       for k, v in found.items()]
        puts = [(full_key(self.prefix, k), v) for k, v in plan.new_values(before).items()]
        ranges = [full_key(self.prefix, k) for k in plan.read_first]
        serializable = plan.read_only and self._serializable(op)
        answer = await self._send(txn_request(compare, ranges, puts, serializable), deadline)
        if isinstance(answer, HttpResponse):
            return refused(op, not plan.read_only, answer)
        if not answer.get("succeeded"):
            return Completion("fail", op.value, COMPARE_FAILED)
        got = txn_ranges(answer)
        if len(got) != len(ranges):
            raise BadAnswer(f"the txn answered {len(got)} ranges for {len(ranges)} asked")
        seen = dict(before)
        seen.update({k: version_of(r, decode).value
                     for k, r in zip(plan.read_first, got, strict=True)})
        return Completion("ok", plan.completed(seen))


async def member_status(node: Node, timeout: float) -> tuple[str, str] | None:
    """(this member's id, the leader it knows) from /v3/maintenance/status, or None."""
    conn = HttpConnection(node.host, node.port, connect_timeout=timeout)
    try:
        response = await conn.request(status_request().encode(conn.host_header), timeout)
        if response.status != 200:
            return None
        body = body_of(response)
        member = str(body["header"]["member_id"])
        leader = str(body.get("leader", "0"))
    except (OSError, TimeoutError, BadAnswer, KeyError, TypeError):
        return None
    finally:
        conn.close()
    return member, leader


async def leader(nodes: Sequence[Node], timeout: float = 1.0) -> str | None:
    """The name of the node every answering node agrees leads, or None."""
    found = await asyncio.gather(*(member_status(n, timeout) for n in nodes))
    answered = [(n.name, s) for n, s in zip(nodes, found, strict=True) if s is not None]
    followed = {lead for _, (_, lead) in answered}
    for name, (member, _) in answered:
        if followed == {member}:
            return name
    return None
