"""etcd 3.4's v2 transcript (tests/testdata/etcd-v2-transcript.json), step by step,
against the v2 store, our member over HTTP, and etcd itself (which checks the data;
`python -m tests.transcript --regenerate` rewrites it from etcd)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.local import LocalCluster
from tests.transcript import Answer, Step, answer_http, answer_v2, differences, load

_, PAIRS = load()
STEPS = [s for s, _ in PAIRS]


def _expected() -> list[tuple[Step, Answer]]:
    missing = [s.name for s, a in PAIRS if a is None]
    assert not missing, f"no etcd answer for {missing}: run python -m tests.transcript --regenerate"
    return [(s, a) for s, a in PAIRS if a is not None]


def test_the_data_has_every_answer_and_the_steps_of_the_reference() -> None:
    expected = _expected()
    assert len(expected) >= 50
    names = [s.name for s, _ in expected]
    assert len(set(names)) == len(names)
    assert {"GET missing key", "CAS prevValue failure", "PATCH method", "HEAD"} <= set(names)


def test_the_v2_store_answers_as_etcd() -> None:
    problems = []
    for (step, want), got in zip(_expected(), answer_v2(STEPS), strict=True):
        if got.status == 0:  # not a /v2/keys request the store answers on its own
            continue
        problems += differences(step, want, got, headers=False)
    assert not problems, "\n".join(problems)


def _run_member(kind: str, root: Path) -> list[str]:
    with LocalCluster(1, kind, root) as cluster:
        cluster.wait_ready(60)
        host, port = cluster.client_url("n1").removeprefix("http://").rsplit(":", 1)
        answers = answer_http(host, int(port), STEPS)
    problems = []
    for (step, want), got in zip(_expected(), answers, strict=True):
        problems += differences(step, want, got)
    return problems


def test_our_member_answers_as_etcd_over_http(tmp_path: Path) -> None:
    problems = _run_member("store", tmp_path)
    assert not problems, "\n".join(problems)


def test_etcd_still_answers_as_the_data_says(tmp_path: Path) -> None:
    if shutil.which("etcd") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("etcd is missing; CI must have etcd 3.4 (apt-get install etcd-server)")
        pytest.skip("etcd 3.4 is missing")
    problems = _run_member("etcd", tmp_path)
    assert not problems, "\n".join(problems)
