"""Our store answers the v2 API like etcd 3.4: the same requests, side by side.

Every scenario runs against a real etcd (/usr/bin/etcd) and then against our store, both
started by LocalCluster with the same flags, and the answers are compared step by step
after normalisation: status, errorCode, message, cause, the JSON field order and node
structure, and which headers are present. What cannot be equal is normalised:

- etcd indexes (X-Etcd-Index, createdIndex, modifiedIndex, an error's index, in-order key
  names, the indexes in a "Compare failed" cause) become offsets from the etcd index at
  the scenario's start, "<i+3>", so the store must advance its index exactly as etcd
  does; indexes from before the scenario become "<old1>", "<old2>"... by first
  appearance; 0 ("no index") stays 0. After a restart, offsets start again from the
  index each server then reports (see Session.rebase: etcd's index moves on a restart).
- X-Raft-Index and X-Raft-Term: only their presence is compared. The raft log holds
  entries that are not v2 writes (etcd's member attributes, a leader's no-op), and etcd
  puts every quorum GET through the log as an entry while our store serves it with
  ReadIndex, which appends nothing: so their values differ by design.
- expiration (a wall-clock time) and ttl (seconds left, which can tick down between the
  write and the read) become placeholders after their format is checked.
- listings requested without sorted=true come in Go map order in etcd, which is random:
  they are compared sorted by key.
- values longer than 256 characters are compared by length and digest.
- a 500 with errorCode 300 may carry any of etcd's own timeout or leader-change causes
  (RAFT_ERRORS): etcd picks one by timing.

Scenarios share one cluster per kind, and every scenario runs on both kinds in the same
order, so the global state they both see (the root listing) stays the same.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.blocking_http import KeepAliveClient, Response, fetch_json, keys_path
from harness.local import LocalCluster

ETCD = "/usr/bin/etcd"
COMPARED_HEADERS = ("content-type", "allow")  # compared by value
INDEX_HEADERS = ("x-etcd-index",)  # compared normalised
PRESENT_HEADERS = ("x-raft-index", "x-raft-term", "x-etcd-cluster-id")  # compared by presence
INDEX_FIELDS = frozenset({"createdIndex", "modifiedIndex", "index"})
INDEX_CAUSES = frozenset({101, 401})  # Compare failed "[a != 6]"; history cleared "[7/3]"
EXPIRATION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
IN_ORDER_NAME = re.compile(r"(?<=/)\d{20}(?=/|$)")
INDEX_COMPARISON = re.compile(r"\[(?P<a>\d+)(?P<op> != |/)(?P<b>\d+)\]")
# etcd answers one situation (no quorum, a lost leader) with any of these, by timing. Our
# store answers "leader changed" as soon as a leader without a quorum steps down, where
# etcd often waits for its request timeout: by design, both are a 500 that leaves the
# outcome unknown.
RAFT_ERRORS = frozenset({
    "etcdserver: request timed out",
    "etcdserver: request timed out, possibly due to previous leader failure",
    "etcdserver: request timed out, possibly due to connection lost",
    "etcdserver: leader changed",
    "etcdserver: no leader",
})  # fmt: skip
LONG_VALUE = 256
STARTUP_S = 30.0
# What is compared with etcd. "etcd" checks the test itself: etcd must match etcd.
SUBJECT = os.environ.get("SPLITBRAIN_CONFORMANCE_SUBJECT", "store")


def require_etcd() -> None:
    if shutil.which(ETCD) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{ETCD} is missing; CI must have etcd 3.4 (apt-get install etcd-server)")
        pytest.skip(f"{ETCD} is missing: the reference to compare with (etcd-server 3.4)")


# -- recording and normalising answers ---------------------------------------------------


@dataclass
class Indexes:
    """Maps etcd indexes to names that are equal across two servers doing the same thing.

    `bases` are the etcd indexes at the scenario's start and after each restart. A value
    is named after the latest base below it, "<i+2>" (start) or "<r1+2>" (first restart);
    the current index (`current`: X-Etcd-Index, an error's index) may equal the latest.
    """

    bases: list[int]
    old: dict[int, str] = field(default_factory=dict)

    def name(self, value: int, current: bool = False) -> int | str:
        if value == 0:  # "no index": the answer to a malformed request
            return 0
        for n in range(len(self.bases) - 1, 0, -1):
            if value > self.bases[n] or (current and value == self.bases[n]):
                return f"<r{n}+{value - self.bases[n]}>"
        if value >= self.bases[0]:
            return f"<i+{value - self.bases[0]}>"
        return self.old.setdefault(value, f"<old{len(self.old) + 1}>")

    def in_cause(self, text: str, literals: frozenset[str]) -> str:
        """Index comparisons in a cause, "[1 != 6]" or "[2226/1]": the number the client
        sent (prevIndex, waitIndex) and the index it was compared with."""

        def one(m: re.Match[str]) -> str:
            a, b = (
                "<sent>" if n in literals else str(self.name(int(n), current=True))
                for n in (m["a"], m["b"])
            )
            return f"[{a}{m['op']}{b}]"

        return INDEX_COMPARISON.sub(one, text)


@dataclass
class Step:
    label: str
    status: int
    headers: dict[str, str]
    body: Any

    def show(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=1)


def normalise_body(
    body: bytes, indexes: Indexes, literals: frozenset[str], keep_order: bool
) -> Any:
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text, object_pairs_hook=list)
    except ValueError:
        return {"text": text}
    return _normalise(parsed, indexes, literals, keep_order)


def _normalise(node: Any, indexes: Indexes, literals: frozenset[str], keep_order: bool) -> Any:
    if isinstance(node, list) and all(isinstance(p, tuple) and len(p) == 2 for p in node):
        out: dict[str, Any] = {}
        for name, value in node:  # an object, as (name, value) pairs in the server's order
            out[name] = _normalise_field(name, value, indexes, literals, keep_order)
        code, cause = dict(node).get("errorCode"), dict(node).get("cause")
        if code in INDEX_CAUSES:
            out["cause"] = indexes.in_cause(cause, literals)
        if code == 300 and cause in RAFT_ERRORS:
            out["cause"] = "<an etcdserver timeout or leader change>"
        return {"fields": list(out), **out}
    if isinstance(node, list):
        items = [_normalise(n, indexes, literals, keep_order) for n in node]
        return items
    return node


def _normalise_field(
    name: str, value: Any, indexes: Indexes, literals: frozenset[str], keep_order: bool
) -> Any:
    if name in INDEX_FIELDS and isinstance(value, int):
        return indexes.name(value, current=name == "index")
    if name == "expiration":
        return "<expiration>" if EXPIRATION.match(str(value)) else f"<bad expiration {value!r}>"
    if name == "ttl":
        return "<ttl>" if isinstance(value, int) and value > 0 else f"<bad ttl {value!r}>"
    if name == "key" and isinstance(value, str):
        return IN_ORDER_NAME.sub(lambda m: str(indexes.name(int(m[0]))), value)
    if name == "value" and isinstance(value, str) and len(value) > LONG_VALUE:
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        return f"<{len(value)} chars sha256:{digest}>"
    if name == "nodes" and isinstance(value, list) and not keep_order:
        value = sorted(value, key=lambda node: str(dict(node).get("key")))
    return _normalise(value, indexes, literals, keep_order)


class Session:
    """Runs one scenario against one cluster and records the normalised answers."""

    def __init__(self, cluster: LocalCluster, prefix: str) -> None:
        self.cluster = cluster
        self.prefix = "/" + prefix
        self._clients: dict[str, KeepAliveClient] = {}
        self.leader = cluster.wait_ready(STARTUP_S)
        self.followers = [n for n in cluster.members if n != self.leader]
        # A hidden write first, so that no index of the scenario can be 0, which means "no
        # index" in etcd's answers, even on a store that has seen no write yet.
        start = self.client().put(f"/_conformance/{prefix}", "start")
        assert start.status in (200, 201), start
        self.indexes = Indexes([int(start.header("x-etcd-index") or 0)])
        self.steps: list[Step] = []

    def rebase(self) -> None:
        """After a restart. etcd writes the member's attributes into its v2 store (under the
        hidden /0/members) each time a member starts, which takes an etcd index. Our store
        keeps membership out of the v2 tree, so its index does not move: that is by design,
        and indexes after a restart are compared from the index each server then reports."""
        probe = self.client().get(self.prefix + "/no-such-key")
        self.indexes.bases.append(int(probe.header("x-etcd-index") or 0))

    def client(self, on: str | None = None) -> KeepAliveClient:
        name = on or self.leader
        if name not in self._clients:
            self._clients[name] = self.cluster.client(name, timeout=15.0)
        return self._clients[name]

    def key(self, name: str = "") -> str:
        return f"{self.prefix}/{name}" if name else self.prefix

    def call(
        self,
        label: str,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        on: str | None = None,
    ) -> Response:
        answer = self.client(on).request(method, path, query=query, form=form)
        self.record(label, answer, query, form)
        return answer

    def record(
        self,
        label: str,
        answer: Response,
        query: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> None:
        sent = {**(query or {}), **(form or {})}
        literals = frozenset(v for k, v in sent.items() if k in ("prevIndex", "waitIndex"))
        keep_order = sent.get("sorted") == "true"
        headers: dict[str, str] = {}
        for name in COMPARED_HEADERS:
            if name in answer.headers:
                headers[name] = answer.headers[name]
        for name in INDEX_HEADERS:
            if name in answer.headers:
                headers[name] = str(self.indexes.name(int(answer.headers[name]), current=True))
        for name in PRESENT_HEADERS:
            if name in answer.headers:
                headers[name] = "<present>"
        body = normalise_body(answer.body, self.indexes, literals, keep_order)
        self.steps.append(Step(label, answer.status, headers, body))

    def note(self, label: str, what: Any) -> None:
        """Record an observation that is not one HTTP answer."""
        self.steps.append(Step(label, 0, {}, what))

    # Shorthands for the keys API; `key` is relative to the scenario's prefix.
    def get(self, label: str, key: str = "", on: str | None = None, **query: str) -> Response:
        return self.call(label, "GET", keys_path(self.key(key)), query or None, None, on)

    def put(
        self,
        label: str,
        key: str,
        form: dict[str, str] | None = None,
        on: str | None = None,
        **query: str,
    ) -> Response:
        return self.call(label, "PUT", keys_path(self.key(key)), query or None, form, on)

    def delete(self, label: str, key: str, on: str | None = None, **query: str) -> Response:
        return self.call(label, "DELETE", keys_path(self.key(key)), query or None, None, on)

    def post(self, label: str, key: str, form: dict[str, str] | None = None) -> Response:
        return self.call(label, "POST", keys_path(self.key(key)), None, form)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def modified(answer: Response) -> int:
    return int(answer.json()["node"]["modifiedIndex"])


# -- scenarios ---------------------------------------------------------------------------
# Each takes a Session; labels name the transcript's sections where they come from it.

Scenario = Callable[[Session], None]
SINGLE: dict[str, Scenario] = {}
TRIPLE: dict[str, Scenario] = {}


def single(fn: Scenario) -> Scenario:
    SINGLE[fn.__name__] = fn
    return fn


def triple(fn: Scenario) -> Scenario:
    TRIPLE[fn.__name__] = fn
    return fn


@single
def watches(s: Session) -> None:
    first = s.put("PUT q", "q", value="fromquery")
    s.put("PUT q again", "q", value="second")
    s.get("wait=true with waitIndex (past event)", "q", wait="true",
          waitIndex=str(modified(first)))  # fmt: skip
    s.get("wait=true recursive on a dir (past event)", "", wait="true", recursive="true",
          waitIndex=str(modified(first)))  # fmt: skip
    s.get("bad waitIndex", "q", wait="true", waitIndex="abc")
    blocking_watch(s, "watched")


def blocking_watch(s: Session, key: str) -> None:
    """wait=true with no waitIndex: etcd sends the headers as soon as the watch is set up,
    which tells the client when a write is sure to be seen; the event follows in the body."""
    port = s.cluster.member(s.leader).client_port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    try:
        conn.request("GET", keys_path(s.key(key)) + "?wait=true")
        try:
            answer = conn.getresponse()
        except TimeoutError:
            s.note("wait=true blocking watch", "no response headers before the event")
            return
        s.put("PUT the watched key", key, {"value": "w1"})
        body = answer.read()
        found = {name.lower(): value for name, value in answer.getheaders()}
        s.record("wait=true blocking watch", Response(answer.status, found, body))
    finally:
        conn.close()


@single
def root(s: Session) -> None:
    s.put("a key so the root is not empty", "k", {"value": "v"})
    s.call("GET root", "GET", "/v2/keys/")
    s.call("GET root without slash", "GET", "/v2/keys")
    s.call("PUT on root", "PUT", "/v2/keys/", form={"value": "x"})
    s.call("POST on root", "POST", "/v2/keys/", form={"value": "x"})
    s.call("DELETE root recursive", "DELETE", "/v2/keys/", query={"recursive": "true"})


@single
def nested_dirs(s: Session) -> None:
    s.put("deep key creates its parents", "a/b/c/d", {"value": "deep"})
    s.put("sibling file", "a/b/x", {"value": "x"})
    s.put("sibling dir", "a/e/f", {"value": "f"})
    s.put("top file", "a/z", {"value": "z"})
    s.get("GET dir lists children, subdirs without nodes", "a")
    s.get("GET dir sorted", "a", sorted="true")
    s.get("GET dir recursive", "a", recursive="true")
    s.get("GET dir recursive sorted", "a", recursive="true", sorted="true")
    s.get("GET intermediate dir", "a/b/c")
    s.get("GET file with recursive", "a/z", recursive="true")
    s.put("PUT a file where a dir is on the path", "a/z/sub", {"value": "x"})
    s.put("PUT dir=true on an existing dir", "a/b", dir="true")
    s.put("PUT dir=true with a value", "v", {"value": "x"}, dir="true")
    s.get("bad recursive bool", "a", recursive="maybe")
    s.get("bad sorted bool", "a", sorted="yes")


@single
def in_order_keys(s: Session) -> None:
    for n in range(3):
        s.post(f"POST in-order #{n}", "jobs", {"value": f"job{n}"})
    s.get("GET the queue sorted", "jobs", sorted="true")
    s.get("GET the queue recursive sorted", "jobs", recursive="true", sorted="true")
    s.put("a plain file", "plain", {"value": "p"})
    s.post("POST under a file", "plain", {"value": "x"})
    s.post("POST with ttl", "jobs", {"value": "t", "ttl": "100"})
    s.post("POST without value", "jobs")
    s.post("POST with dir=true", "jobs", {"dir": "true"})


@single
def delete_dirs(s: Session) -> None:
    s.put("empty dir", "empty", dir="true")
    s.delete("DELETE empty dir without dir=true", "empty")
    s.delete("DELETE empty dir with dir=true", "empty", dir="true")
    s.put("nested tree", "tree/a/b", {"value": "1"})
    s.put("second leaf", "tree/c", {"value": "2"})
    s.delete("DELETE tree with dir=true", "tree", dir="true")
    s.delete("DELETE subtree recursive", "tree/a", recursive="true")
    s.get("GET after subtree delete", "tree", recursive="true", sorted="true")
    s.delete("DELETE tree recursive", "tree", recursive="true")
    s.get("GET deleted tree", "tree")
    s.put("a file", "f", {"value": "1"})
    s.delete("DELETE file with dir=true", "f", dir="true")
    s.put("a file again", "f", {"value": "1"})
    s.delete("DELETE file with recursive=true", "f", recursive="true")
    s.put("dir for CAD", "cad", dir="true")
    s.delete("compareAndDelete on a dir", "cad", prevValue="x", dir="true")
    s.delete("DELETE missing with recursive", "nothing", recursive="true")


@single
def prev_exist_dirs(s: Session) -> None:
    s.put("PUT dir", "d", dir="true")
    s.put("dir prevExist=false on existing dir", "d", dir="true", prevExist="false")
    s.put("dir prevExist=true on existing dir", "d", dir="true", prevExist="true")
    s.put("dir prevExist=true on missing dir", "d2", dir="true", prevExist="true")
    s.put("dir prevExist=false on missing dir", "d3", dir="true", prevExist="false")
    s.put("value prevExist=true on a dir", "d", {"value": "v"}, prevExist="true")
    s.put("value prevExist=false on a dir", "d", {"value": "v"}, prevExist="false")
    s.put("a file", "f", {"value": "v"})
    s.put("dir prevExist=true on a file", "f", dir="true", prevExist="true")
    s.put("dir=true on a file", "f", dir="true")
    s.put("bad prevExist", "f", {"value": "v"}, prevExist="maybe")


@single
def hidden_keys(s: Session) -> None:
    s.put("hidden key", "_hidden", {"value": "h"})
    s.put("visible key", "visible", {"value": "v"})
    s.put("hidden dir", "_hdir/k", {"value": "x"})
    s.put("hidden key in a subdir", "sub/_h", {"value": "x"})
    s.get("listing skips hidden keys", "", sorted="true")
    s.get("recursive listing skips hidden keys", "", recursive="true", sorted="true")
    s.get("a hidden key read directly", "_hidden")
    s.get("a subdir holding only a hidden key", "sub")
    s.get("inside a hidden dir", "_hdir")
    s.delete("DELETE a hidden key", "_hidden")


@single
def encoded_values(s: Session) -> None:
    values = {
        "amp": "a&b=c+d%20e",
        "unicode": "日本語 ✓ 🚀 ß",
        "newlines": "line1\nline2\r\n\ttab",
        "quotes": "\"'<>\\",
        "json": '{"a": [1, 2]}',
        "spaces": "  leading and trailing  ",
    }
    for name, value in values.items():
        s.put(f"PUT {name} value in the form", name, {"value": value})
        s.get(f"GET {name}", name)
        s.put(f"PUT {name} value in the query", f"q{name}", value=value)
        s.put(f"CAS {name} with prevValue in the query", name, {"value": "after"},
              prevValue=value)  # fmt: skip
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = s.client().request("PUT", keys_path(s.key("raw")), headers=form_type)
    s.record("PUT with form content type and an empty body", answer)
    answer = s.client().request("PUT", keys_path(s.key("raw")) + "?value=caf%C3%A9+au+lait%26more")
    s.record("PUT with a raw query string", answer, {"value": "café au lait&more"})
    s.get("GET it", "raw")


@single
def big_value(s: Session) -> None:
    value = "".join(chr(ord("a") + (i * 7) % 26) for i in range(2 * 2**20))  # 2 MiB
    s.put("PUT a 2 MiB value", "big", {"value": value})
    answer = s.get("GET the 2 MiB value", "big")
    assert answer.status != 200 or answer.json()["node"]["value"] == value


@single
def odd_keys(s: Session) -> None:
    for label, name in [
        ("space", "a b"),
        ("plus", "a+b"),
        ("punctuation", "a:b@c,d;e=f"),
        ("tilde and star", "~x*y!(z)'"),
        ("percent", "100%"),
        ("unicode", "ключ✓"),
        ("question mark", "what?"),
        ("hash", "a#b"),
        ("dots", "a.b..c"),
    ]:
        s.put(f"PUT key with {label}", name, {"value": label})
        s.get(f"GET key with {label}", name)
    prefix = keys_path(s.key())
    s.call("PUT with an encoded slash", "PUT", prefix + "/x%2Fy", form={"value": "slash"})
    s.get("GET what the encoded slash made", "x", recursive="true")
    s.call("PUT with a trailing slash", "PUT", prefix + "/trail/", form={"value": "t"})
    s.get("GET the trailing-slash key", "trail")
    s.get("GET the listing", "", sorted="true")


@single
def endpoints(s: Session) -> None:
    answer = s.client().request("GET", "/version")
    s.note("GET /version: status and fields", [answer.status, list(answer.json())])
    s.call("GET /health", "GET", "/health")
    answer = s.client().request("GET", "/v2/members")
    members = answer.json()["members"]
    s.note("GET /v2/members: fields", [answer.status, list(answer.json())])
    s.note("GET /v2/members: member fields", [list(m) for m in members])
    s.note("GET /v2/members: names", sorted(m["name"] for m in members))
    answer = s.client().request("GET", "/v2/stats/self")
    stats = answer.json()
    s.note("GET /v2/stats/self: state", [answer.status, stats["state"], stats["name"]])
    s.note("GET /v2/stats/self: leader is self", stats["leaderInfo"]["leader"] == stats["id"])
    s.note("GET /v2/stats/self: id is a member id", stats["id"] in {m["id"] for m in members})


@single
def restart(s: Session) -> None:
    s.put("PUT before restart", "k", {"value": "survives"})
    s.cluster.restart(s.leader)  # SIGTERM, then the same data dir
    s.close()
    s.cluster.wait_ready(STARTUP_S)
    s.rebase()
    s.get("GET after restart", "k")
    s.put("PUT after restart", "k", {"value": "again"})


@single
def history_cleared(s: Session) -> None:
    """etcd keeps the last 1000 events; older waitIndexes are refused. Run last."""
    first = s.put("first write", "h", {"value": "0"})
    client = s.client()
    for n in range(1, 1001):
        assert client.put(s.key("filler"), str(n)).status in (200, 201)
    s.get("wait with waitIndex older than the 1000-event history", "h", wait="true",
          waitIndex=str(modified(first)))  # fmt: skip
    s.get("wait with waitIndex just inside the history", "filler", wait="true",
          waitIndex=str(modified(first) + 2))  # fmt: skip


@triple
def follower_forwarding(s: Session) -> None:
    n1, n2 = s.followers
    s.put("PUT on a follower (forwarded to the leader)", "ck", {"value": "from-n1"}, on=n1)
    wait_value(s, n2, "ck", "from-n1")
    s.get("GET on the other follower", "ck", on=n2)
    s.get("GET on the leader", "ck", on=s.leader)
    s.get("GET quorum=true on a follower", "ck", on=n2, quorum="true")
    s.put("CAS on a follower", "ck", {"value": "from-n2"}, on=n2, prevValue="from-n1")
    s.put("failed CAS on a follower", "ck", {"value": "x"}, on=n1, prevValue="from-n1")
    s.post("POST in-order on a follower", "queue", {"value": "j"})
    s.delete("DELETE on a follower", "ck", on=n1, prevValue="from-n2")
    wait_value(s, n1, "ck", None)  # the delete is the last write: n1 has applied them all
    s.get("GET on the first follower afterwards", "ck", on=n1)
    s.get("GET quorum=true of a missing key on a follower", "ck", on=n1, quorum="true")


def wait_value(s: Session, on: str, key: str, value: str | None, timeout: float = 10.0) -> None:
    """Default GETs are served locally: wait until a follower has applied the write."""
    client = s.cluster.client(on)

    def applied() -> bool:
        answer = client.get(s.key(key))
        if value is None:
            return answer.status == 404
        return answer.status == 200 and answer.json()["node"].get("value") == value

    try:
        s.cluster.wait_for(applied, timeout, f"{on} applies {key}={value!r}")
    finally:
        client.close()


@triple
def members_and_stats(s: Session) -> None:
    answer = s.client(s.followers[0]).request("GET", "/v2/members")
    names = sorted(m["name"] for m in answer.json()["members"])
    s.note("GET /v2/members on a follower: names", names)
    leader_id = (s.cluster.stats(s.leader) or {}).get("id")
    for name in s.followers:
        stats = s.cluster.stats(name) or {}
        s.note("stats/self on a follower: state", stats.get("state"))
        following = stats.get("leaderInfo", {}).get("leader")
        s.note("stats/self on a follower: names the leader", following == leader_id)


OLD_OR_TIMED_OUT = ("from-n2", "noquorum")


@triple
def no_quorum(s: Session) -> None:
    """Two of three members stopped: writes and quorum reads time out with 500/300,
    default reads are served from local state, and the timed-out write is not applied."""
    survivor = s.leader
    s.put("PUT with quorum", "ck", {"value": "from-n2"}, on=survivor)
    for name in s.followers:
        s.cluster.kill(name, signal.SIGTERM)
    health = s.cluster.client_url(survivor) + "/health"
    s.cluster.wait_for(lambda: fetch_json(health) is None, 10.0, f"{survivor} unhealthy")
    with ThreadPoolExecutor(2) as pool:
        put = pool.submit(s.cluster.client(survivor, 30.0).put, s.key("ck"), OLD_OR_TIMED_OUT[1])
        get = pool.submit(s.cluster.client(survivor, 30.0).get, s.key("ck"), quorum="true")
        s.record("PUT on minority member (no quorum)", put.result())
        s.record("GET quorum=true on minority member", get.result(), {"quorum": "true"})
    s.get("GET default on minority member (served locally)", "ck", on=survivor)
    for name in s.followers:
        s.cluster.restart(name)
    s.close()
    s.cluster.wait_ready(STARTUP_S)
    s.rebase()
    # Whether the timed-out PUT takes effect is not determined: if the survivor still led
    # when it came, the entry sits in its log, and the survivor, whose log is the longest,
    # can win the next election and commit it. The transcript saw it dropped; etcd here
    # does either, depending on timing.
    answer = s.client(s.followers[0]).get(s.key("ck"), quorum="true")
    value = answer.json()["node"]["value"] if answer.status == 200 else None
    s.note("GET quorum=true after quorum restored", [answer.status, value in OLD_OR_TIMED_OUT])


# -- running them ------------------------------------------------------------------------


def run(scenario: Scenario, cluster: LocalCluster) -> list[Step]:
    session = Session(cluster, scenario.__name__)
    try:
        scenario(session)
    finally:
        session.close()
    return session.steps


def assert_conforms(expected: list[Step], actual: list[Step], store: LocalCluster) -> None:
    labels = [s.label for s in expected]
    assert labels == [s.label for s in actual], "the scenario did not run the same steps"
    bad = [(e, a) for e, a in zip(expected, actual, strict=True) if e != a]
    if not bad:
        return
    lines = [f"{len(bad)} of {len(expected)} steps differ from etcd:"]
    for e, a in bad:
        lines += [f"== {e.label}", "etcd:", e.show(), "store:", a.show()]
    lines.append(f"store logs in {store.root}")
    pytest.fail("\n".join(lines), pytrace=False)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalCluster]]:
    require_etcd()
    started: dict[str, LocalCluster] = {}
    try:
        yield started
    finally:
        for cluster in started.values():
            cluster.stop()


def get_cluster(
    clusters: dict[str, LocalCluster], kind: str, size: int, root: Any, role: str = "reference"
) -> LocalCluster:
    name = f"{role}-{kind}{size}"
    if name not in clusters:
        cluster = LocalCluster(size, kind, root / name)  # type: ignore[arg-type]
        clusters[name] = cluster
        cluster.up()
        cluster.wait_ready(STARTUP_S)
    return clusters[name]


def compare(
    scenario: Scenario,
    size: int,
    clusters: dict[str, LocalCluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.getbasetemp() / "conformance"
    etcd = get_cluster(clusters, "etcd", size, root)
    store = get_cluster(clusters, SUBJECT, size, root, "subject")
    started = time.monotonic()
    expected = run(scenario, etcd)
    etcd_s = time.monotonic() - started
    actual = run(scenario, store)
    subject_s = time.monotonic() - started - etcd_s
    print(f"{scenario.__name__}: etcd {etcd_s:.2f}s, {SUBJECT} {subject_s:.2f}s")
    assert_conforms(expected, actual, store)


@pytest.mark.parametrize("scenario", list(SINGLE.values()), ids=list(SINGLE))
def test_single_member(scenario: Scenario, clusters, tmp_path_factory) -> None:
    compare(scenario, 1, clusters, tmp_path_factory)


@pytest.mark.parametrize("scenario", list(TRIPLE.values()), ids=list(TRIPLE))
def test_three_members(scenario: Scenario, clusters, tmp_path_factory) -> None:
    compare(scenario, 3, clusters, tmp_path_factory)
