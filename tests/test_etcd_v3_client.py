"""The etcd v3 client: its outcome rules as plain functions, and the client against a
real etcd 3.4 (/usr/bin/etcd, its defaults: v2 off) started here on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checker.history import UNOBSERVED
from harness.client import HttpResponse, Node, NotSent
from harness.etcd_v3 import (
    COMPARE_FAILED,
    EtcdV3Client,
    TimeUp,
    TxnPlan,
    UnknownOperation,
    leader,
    refused,
    txn_request,
    undelivered,
)
from harness.local import LocalCluster
from harness.ops import Completion, Invocation
from harness.system import Etcd, client_node

ETCD = "/usr/bin/etcd"
SEED = 20


def answer(status: int, code: int | None = None, message: str = "") -> HttpResponse:
    body = {} if code is None else {"error": message, "message": message, "code": code}
    return HttpResponse(status, body=json.dumps(body).encode())


READ = Invocation("read", key="k")
PUT = Invocation("write", 3, "k")
APPEND = Invocation("txn", [["r", 1, None], ["append", 1, 4]])
READ_TXN = Invocation("txn", [["r", 1, None], ["r", 2, None]])


@pytest.mark.parametrize("code", [3, 9, 11])
def test_refused_codes_are_a_fail_whatever_the_operation(code: int) -> None:
    for op in (READ, PUT, APPEND, READ_TXN):
        done = refused(op, op.f != "read" and op is not READ_TXN, answer(400, code, "bad"))
        assert done.type == "fail" and done.error["code"] == code


def test_the_issue_s_measured_answers_decide_as_the_rules_say() -> None:
    # etcd 3.4.23 cut off by iptables: a linearizable range answered 503 code 14 after
    # 7 s; a put answered 500 code 2 "context deadline exceeded" (not applied)
    unavailable = answer(503, 14, "etcdserver: leader changed")
    deadline = answer(500, 2, "context deadline exceeded")
    assert refused(READ, False, unavailable) == Completion("fail", UNOBSERVED, {
        "status": 503, "code": 14, "message": "etcdserver: leader changed"})
    assert refused(PUT, True, deadline).type == "info"
    assert refused(APPEND, True, answer(504, 4, "request timed out")).type == "info"
    assert refused(READ_TXN, False, deadline).type == "fail"
    assert refused(READ_TXN, False, deadline).value == READ_TXN.value


def test_a_4xx_without_a_grpc_code_was_refused_by_the_gateway() -> None:
    done = refused(PUT, True, HttpResponse(404, body=b"Not Found"))
    assert done.type == "fail" and done.error == {"status": 404, "code": None, "message": None}


def test_no_answer_is_info_for_writes_and_fail_for_reads() -> None:
    assert undelivered(PUT, True, NotSent("refused")) == Completion("fail", 3,
                                                                   "connection-refused")
    assert undelivered(READ, False, NotSent("refused")).value is UNOBSERVED
    assert undelivered(PUT, True, TimeoutError()) == Completion("info", 3, "timeout")
    assert undelivered(APPEND, True, TimeUp("slow read")) == Completion(
        "fail", APPEND.value, "timeout-before-sending")
    assert undelivered(APPEND, True, ConnectionResetError()).type == "info"
    assert undelivered(READ_TXN, False, ConnectionResetError()) == Completion(
        "fail", READ_TXN.value, "ConnectionResetError")


def test_a_txn_plan_reads_its_own_writes_and_puts_final_lists() -> None:
    plan = TxnPlan.of([["r", 1, None], ["append", 1, 5], ["r", 1, None], ["append", 2, 7],
                       ["append", 1, 6]])
    assert plan.keys == (1, 2) and plan.read_first == (1,) and plan.appends
    before = {1: (3,), 2: None}
    assert plan.new_values(before) == {1: "[3,5,6]", 2: "[7]"}
    assert plan.completed(before) == [["r", 1, [3]], ["append", 1, 5], ["r", 1, [3, 5]],
                                      ["append", 2, 7], ["append", 1, 6]]
    wr = TxnPlan.of([["w", "a", 1], ["r", "a", None], ["r", "b", None], ["w", "a", 2]])
    assert wr.read_first == ("b",) and wr.new_values({}) == {"a": "2"}
    assert wr.completed({"b": 9}) == [["w", "a", 1], ["r", "a", 1], ["r", "b", 9],
                                      ["w", "a", 2]]
    for bad in ([], [["w", 1, 1], ["append", 1, 2]], [["x", 1, 1]], "r 1"):
        with pytest.raises(UnknownOperation):
            TxnPlan.of(bad)


def test_requests_are_the_gateway_s_json() -> None:
    req = txn_request([{"key": "YQ==", "target": "MOD", "result": "EQUAL",
                        "mod_revision": "0"}], ["a"], [("a", "[1]")], serializable=True)
    assert req.path == "/v3/kv/txn"
    assert req.body["success"] == [
        {"request_range": {"key": "YQ==", "serializable": True}},
        {"request_put": {"key": "YQ==", "value": "WzFd"}}]
    raw = req.encode("h:1")
    assert raw.startswith(b"POST /v3/kv/txn HTTP/1.1\r\nHost: h:1\r\n")
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1]) == req.body


# -- against etcd 3.4 --------------------------------------------------------------------


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if not shutil.which(ETCD):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{ETCD} is missing; CI must have etcd 3.4 (apt-get install etcd-server)")
        pytest.skip(f"{ETCD} is missing (Debian's etcd-server 3.4)")
    root: Path = tmp_path_factory.mktemp("etcd-v3")
    with LocalCluster(3, Etcd(api="v3"), root) as cluster:
        cluster.wait_ready(30)
        yield cluster


def node(cluster: LocalCluster, name: str) -> Node:
    return next(client_node(n) for n in cluster.nodes if n.name == name)


async def run(cluster: LocalCluster, ops: list[Invocation], **options: Any) -> list[Completion]:
    client = EtcdV3Client(**options)
    await client.open(node(cluster, "n1"))
    try:
        return [await client.invoke(op) for op in ops]
    finally:
        await client.close()


def test_etcd_runs_with_v2_off_and_names_its_leader(etcd: LocalCluster) -> None:
    argv = etcd.argv(etcd.member("n1"))
    assert not any("enable-v2" in a for a in argv)
    found = asyncio.run(leader([client_node(n) for n in etcd.nodes]))
    assert found == etcd.leader() and found in etcd.members


@pytest.mark.parametrize("guard", ["value", "revision"])
@pytest.mark.parametrize("reads", ["linearizable", "serializable"])
def test_register_operations(etcd: LocalCluster, guard: str, reads: str) -> None:
    key = f"reg-{guard}-{reads}"
    done = asyncio.run(run(etcd, [
        Invocation("read", key=key), Invocation("write", 1, key),
        Invocation("cas", [1, 2], key), Invocation("cas", [1, 3], key),
        Invocation("read", key=key, final=True),
    ], cas_guard=guard, reads=reads))
    assert [(d.type, d.value) for d in done] == [
        ("ok", None), ("ok", 1), ("ok", [1, 2]), ("fail", [1, 3]), ("ok", 2)]


def test_list_append_and_rw_register_transactions(etcd: LocalCluster) -> None:
    lists = asyncio.run(run(etcd, [
        Invocation("txn", [["r", 10, None], ["append", 10, 1], ["r", 10, None],
                           ["append", 11, 1]]),
        Invocation("txn", [["append", 10, 2], ["r", 11, None]]),
        Invocation("txn", [["r", 10, None], ["r", 11, None], ["r", 12, None]]),
    ], lists=True, prefix="txn"))
    assert [d.value for d in lists] == [
        [["r", 10, None], ["append", 10, 1], ["r", 10, [1]], ["append", 11, 1]],
        [["append", 10, 2], ["r", 11, [1]]],
        [["r", 10, [1, 2]], ["r", 11, [1]], ["r", 12, None]],
    ] and all(d.type == "ok" for d in lists)
    registers = asyncio.run(run(etcd, [
        Invocation("txn", [["r", "x", None], ["w", "x", 1], ["r", "x", None], ["w", "y", 5]]),
        Invocation("txn", [["r", "x", None], ["r", "y", None]]),
    ], prefix="wr", reads="serializable"))
    assert [d.value for d in registers] == [
        [["r", "x", None], ["w", "x", 1], ["r", "x", 1], ["w", "y", 5]],
        [["r", "x", 1], ["r", "y", 5]]]


def test_concurrent_appends_guarded_by_revision_lose_nothing(etcd: LocalCluster) -> None:
    """Appends racing on one key: each is ok (its element is in the list once, in the
    order its reads saw) or a failed compare (its element never is)."""
    rng = random.Random(SEED)
    names = etcd.members

    async def worker(w: int) -> list[tuple[int, Completion]]:
        client = EtcdV3Client(lists=True, prefix="race")
        await client.open(node(etcd, rng.choice(names)))
        out = []
        for i in range(15):
            element = w * 100 + i
            out.append((element, await client.invoke(
                Invocation("txn", [["append", 0, element], ["r", 0, None]]))))
        await client.close()
        return out

    async def all_workers() -> list[tuple[int, Completion]]:
        return [x for xs in await asyncio.gather(*(worker(w) for w in range(6))) for x in xs]

    done = asyncio.run(all_workers())
    final = asyncio.run(run(etcd, [Invocation("txn", [["r", 0, None]], final=True)],
                            lists=True, prefix="race"))[0].value[0][2]
    ok = {e for e, d in done if d.type == "ok"}
    failed = {e for e, d in done if d.type == "fail"}
    assert all(d.error == COMPARE_FAILED for e, d in done if e in failed), f"seed {SEED}"
    assert set(final) == ok and len(final) == len(ok), f"seed {SEED}"
    assert failed, f"seed {SEED}: no append raced another"
    for e, d in done:
        if d.type == "ok":
            seen = d.value[1][2]
            assert seen[-1] == e and seen == final[:len(seen)], f"seed {SEED}"


def test_a_stopped_member_refuses_and_nothing_is_sent(etcd: LocalCluster) -> None:
    etcd.kill("n3")
    try:
        client = EtcdV3Client(timeout=2.0, lists=True)

        async def go() -> list[Completion]:
            await client.open(node(etcd, "n3"))
            return [await client.invoke(PUT), await client.invoke(APPEND)]

        done = asyncio.run(go())
        assert [d.type for d in done] == ["fail", "fail"]
        assert done[0].error == "connection-refused"
    finally:
        etcd.start("n3")
        etcd.wait_ready(30)
