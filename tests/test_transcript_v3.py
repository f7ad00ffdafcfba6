"""etcd 3.4's v3 gateway transcript (tests/testdata/etcd-v3-transcript.json) against our
member over HTTP, and against etcd itself, which checks the data
(`python -m tests.transcript_v3 --regenerate` rewrites it from etcd)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.local import LocalCluster
from tests.transcript_v3 import Step, answer_http, differences, load, real_etcd, steps

PAIRS = load()


def test_the_data_holds_the_steps_of_the_builder_and_every_endpoint() -> None:
    assert [s for s, _ in PAIRS] == steps(), "run python -m tests.transcript_v3 --regenerate"
    assert len(PAIRS) >= 250
    paths = {s.path for s, _ in PAIRS}
    assert {"/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn",
            "/v3/kv/compaction", "/v3/maintenance/status"} <= paths
    codes = {a.body.rsplit('"code":', 1)[-1].rstrip("}") for _, a in PAIRS if '"code":' in a.body}
    assert {"3", "5", "11"} <= codes


def _problems(answers: list, pairs: list) -> list[str]:
    out = []
    for (step, want), got in zip(pairs, answers, strict=True):
        out += differences(step, want, got)
    return out


def _steps() -> list[Step]:
    return [s for s, _ in PAIRS]


def test_our_member_answers_as_etcd(tmp_path: Path) -> None:
    with LocalCluster(1, "store", tmp_path) as cluster:
        cluster.wait_ready(60)
        host, port = cluster.client_url("n1").removeprefix("http://").rsplit(":", 1)
        answers = answer_http(host, int(port), _steps())
    problems = _problems(answers, PAIRS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


def test_etcd_still_answers_as_the_data_says(tmp_path: Path) -> None:
    if shutil.which("etcd") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("etcd is missing; CI must have etcd 3.4 (apt-get install etcd-server)")
        pytest.skip("etcd 3.4 is missing")
    with real_etcd(tmp_path) as (host, port):
        answers = answer_http(host, port, _steps())
    problems = _problems(answers, PAIRS)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)
