"""etcd 3.4's v2 transcript as data: tests/testdata/etcd-v2-transcript.json.

The file lists requests in order, each with etcd's answer (status, headers in
order, body), as a fresh single etcd member gave them. The same steps run
against the v2 store alone (``answer_v2``), against a member over HTTP
(``answer_http``: our store, or etcd itself to check the file), and compare
with ``differences``. Rewrite the answers from a real etcd with

    python -m tests.transcript --regenerate

What differs by nature is not compared: Date, the cluster id's value, X-Raft-Index
and X-Raft-Term (their presence is), and a TTL's expiration and seconds left
(their format is).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.transcript_http import Answer, regenerate_main, send_in_order

DATA = Path(__file__).parent / "testdata" / "etcd-v2-transcript.json"
START_INDEX = 3  # a fresh etcd member's X-Etcd-Index (its own membership keys)
FORM = "application/x-www-form-urlencoded"
PRESENT_ONLY = frozenset({"date", "x-etcd-cluster-id", "x-raft-index", "x-raft-term"})
_EXPIRATION = re.compile(r'"expiration":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)","ttl":(\d+)')


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    method: str
    target: str  # path and query
    form: str | None  # an url-encoded body, sent as a form

    def request(self) -> tuple[str, str, bytes | None, dict[str, str]]:
        if self.form is None:
            return self.method, self.target, None, {}
        return self.method, self.target, self.form.encode(), {"Content-Type": FORM}


def load(path: Path = DATA) -> tuple[dict[str, Any], list[tuple[Step, Answer | None]]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    steps = []
    for s in doc["steps"]:
        step = Step(s["name"], s["method"], s["target"], s.get("form"))
        got = s.get("answer")
        steps.append((step, None if got is None else Answer.from_json(got)))
    return doc, steps


# -- subjects --------------------------------------------------------------------------


def answer_http(host: str, port: int, steps: list[Step]) -> list[Answer]:
    """Send the steps to a member, in order, on one connection."""
    return send_in_order(host, port, steps, prepare=_bring_index_to_start)


def _bring_index_to_start(conn: http.client.HTTPConnection) -> None:
    """Our fresh member starts at index 0 and etcd's at 3: hidden keys make up the gap."""
    for i in range(START_INDEX + 1):
        conn.request("GET", "/v2/keys/")
        r = conn.getresponse()
        r.read()
        index = int(r.getheader("X-Etcd-Index") or 0)
        if index == START_INDEX:
            return
        if index > START_INDEX:
            raise AssertionError(f"the member is not fresh: index {index}")
        conn.request("PUT", f"/v2/keys/_transcript{i}", body="value=x",
                     headers={"Content-Type": FORM})  # fmt: skip
        r = conn.getresponse()
        r.read()
    raise AssertionError("could not bring the member's index to 3")


def answer_v2(steps: list[Step]) -> list[Answer]:
    """The steps against the v2 store alone, through the request-to-command mapping
    the HTTP layer uses. Bodies and statuses; only what the store decides."""
    from store.http.form import unescape
    from store.http.keys import PREFIX, parse_key_request, to_command
    from store.http.request import Request
    from store.v2.command import Command
    from store.v2.errors import EtcdError
    from store.v2.paths import clean
    from store.v2.store import V2Store

    store = V2Store()
    for i in range(START_INDEX):
        store.apply(Command("set", f"/_transcript{i}", "x", time=time.time()))
    out = []
    for s in steps:
        path, _, query = s.target.partition("?")
        if not path.startswith(PREFIX) or s.method not in ("GET", "PUT", "POST", "DELETE"):
            out.append(Answer(0, (), ""))  # not the store's business: not compared
            continue
        key = unescape(path.encode(), plus=False)
        req = Request(
            s.method, key, query.encode(), (s.form or "").encode(),
            FORM.encode() if s.form is not None else b"", "1.1", b"",
        )  # fmt: skip
        try:
            kr = parse_key_request(req, clean(key[len(PREFIX) :]))
            if kr.wait:
                w = store.watch(kr.path, kr.recursive, kr.stream, kr.wait_index)
                ev = asyncio.run(asyncio.wait_for(w.next(), 1.0))
                assert ev is not None
                out.append(Answer(200, (), ev.to_json().decode() + "\n"))
                continue
            if s.method == "GET":
                ev = store.get(kr.path, kr.recursive, kr.sorted, now=time.time())
            else:
                res = store.apply(to_command(kr, time.time()))
                if isinstance(res, EtcdError):
                    raise res
                ev = res
        except EtcdError as err:
            out.append(Answer(err.status, (), err.to_json().decode() + "\n"))
            continue
        if kr.no_value_on_success and ev.action != "get":
            body = f'{{"action":"{ev.action}"}}\n'
        else:
            body = ev.to_json().decode() + "\n"
        out.append(Answer(201 if ev.is_created() else 200, (), body))
    return out


# -- comparison ------------------------------------------------------------------------


def _ttl_free(body: str) -> tuple[str, list[str]]:
    found = [m.group(0) for m in _EXPIRATION.finditer(body)]
    return _EXPIRATION.sub('"expiration":"<time>","ttl":<ttl>', body), found


def differences(step: Step, want: Answer, got: Answer, *, headers: bool = True) -> list[str]:
    """What ``got`` does differently from etcd's ``want``; empty if nothing."""
    out = []
    if got.status != want.status:
        out.append(f"status {got.status}, etcd {want.status}")
    want_body, want_ttls = _ttl_free(want.body)
    got_body, got_ttls = _ttl_free(got.body)
    if got_body != want_body:
        out.append(f"body {got.body!r}, etcd {want.body!r}")
    if len(got_ttls) != len(want_ttls):
        out.append(f"TTL fields {got_ttls}, etcd {want_ttls}")
    if headers:
        names = [k for k, _ in got.headers]
        want_names = [k for k, _ in want.headers]
        if names != want_names:
            out.append(f"headers {names}, etcd {want_names}")
        got_h = {k.lower(): v for k, v in got.headers}
        for k, v in want.headers:
            k = k.lower()
            if k in PRESENT_ONLY or (k == "content-length" and want_ttls):
                continue
            if got_h.get(k, v) != v:
                out.append(f"{k}: {got_h.get(k)!r}, etcd {v!r}")
    return [f"{step.name} ({step.method} {step.target}): {d}" for d in out]


# -- regeneration ----------------------------------------------------------------------


def dump(doc: dict[str, Any]) -> str:
    """The data file's text: one step per block, one header per line."""
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    # json's indent puts each header's name and value on lines of their own.
    text = re.sub(r'\[\n\s*("(?:[^"\\]|\\.)*"),\n\s*("(?:[^"\\]|\\.)*")\n\s*\]', r"[\1, \2]", text)
    return text + "\n"


def regenerate(path: Path = DATA) -> int:
    from harness.local import LocalCluster

    doc, pairs = load(path)
    steps = [s for s, _ in pairs]
    with LocalCluster(1, "etcd") as cluster:
        cluster.wait_ready(60)
        host, port = cluster.client_url("n1").removeprefix("http://").rsplit(":", 1)
        answers = answer_http(host, int(port), steps)
    for raw, answer in zip(doc["steps"], answers, strict=True):
        raw["answer"] = answer.as_json()
    version = json.loads(answers[0].body).get("etcdserver", "?") if answers else "?"
    doc["generated_with"] = f"etcd {version}"
    path.write_text(dump(doc), encoding="utf-8")
    print(f"wrote etcd {version}'s answers to {len(steps)} requests in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return regenerate_main("python -m tests.transcript", __doc__,
                           "the answers in the data file from a real etcd 3.4", regenerate, argv)


if __name__ == "__main__":
    sys.exit(main())
