"""`splitbrain serve` over HTTP on 127.0.0.1: the index of real runs, newest first and
filtered by verdict, a run's page, its report, and nothing outside the results."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.serve import make_server
from tests.report_support import HOSTILE, Runs, real_runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return real_runs(tmp_path_factory.mktemp("report-runs"))


@pytest.fixture
def base(runs: Runs) -> Iterator[str]:
    server = make_server(runs.root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def rows(page: str) -> list[tuple[str, str]]:
    """(verdict, test) of each row of the index, in order."""
    return re.findall(r'<tr class="run" data-verdict="(\w+)"><td>[^<]*</td><td>([^<]*)</td>',
                      page)


def test_the_index_lists_every_run_newest_first(runs: Runs, base: str) -> None:
    status, kind, page = get(base + "/")
    assert status == 200 and kind.startswith("text/html")
    listed = rows(page)
    assert sorted(t for _, t in listed) == ["hostile", "kills", "laggy", "set"]
    api = json.loads(get(base + "/api/runs")[2])
    started = [r["started"] for r in api]
    assert started == sorted(started, reverse=True)
    assert [r["test"] for r in api] == [t for _, t in listed]
    kills = next(r for r in api if r["test"] == "kills")
    assert kills["verdict"] == "valid" and kills["faults"] >= 1 and kills["ops"] > 0
    assert kills["duration_s"] > 0 and kills["system"].startswith("store")
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_index_filters_by_verdict(base: str) -> None:
    invalid = rows(get(base + "/?verdict=invalid")[2])
    assert {t for _, t in invalid} == {"laggy", "hostile"}
    assert all(v == "invalid" for v, _ in invalid)
    valid = rows(get(base + "/?verdict=valid")[2])
    assert {t for _, t in valid} == {"kills", "set"}
    assert rows(get(base + "/?verdict=unknown")[2]) == []
    assert get(base + "/?verdict=maybe")[0] == 400


def test_a_run_page_lists_its_files_and_links_its_report(runs: Runs, base: str) -> None:
    rel = runs.dirs["laggy"].relative_to(runs.root).as_posix()
    status, _, page = get(f"{base}/runs/{rel}/")
    assert status == 200
    for name in ("report.html", "results.json", "history.jsonl", "spec.yaml", "harness.log",
                 "nodes/n1.log"):
        assert f'href="{name}"' in page
    assert "data/" not in page  # the local nodes' data directories are not listed
    status, kind, report = get(f"{base}/runs/{rel}/report.html")
    assert status == 200 and kind.startswith("text/html")
    assert "INVALID: the system broke its consistency claim" in report
    status, kind, text = get(f"{base}/runs/{rel}/results.json")
    assert status == 200 and json.loads(text)["valid"] is False
    status, kind, _ = get(f"{base}/runs/{rel}/nodes/n1.log")
    assert status == 200 and kind.startswith("text/plain")
    status, _, _ = get(f"{base}/runs/{rel}")
    assert status == 200  # redirected to the folder


def test_nothing_outside_the_runs_is_served(runs: Runs, base: str) -> None:
    (runs.root / "secret.txt").write_text("no")
    rel = runs.dirs["laggy"].relative_to(runs.root).as_posix()
    host, port = base.removeprefix("http://").split(":")
    for path in ("/runs/../secret.txt", f"/runs/{rel}/../../secret.txt",
                 f"/runs/{rel}/..%2f..%2fsecret.txt", "/runs/secret.txt", "/etc/passwd",
                 f"/runs/{rel}/data/", f"/runs/{rel}/missing.txt"):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", path)  # sent as is, not normalised by a client
        answer = conn.getresponse()
        body = answer.read().decode()
        conn.close()
        assert answer.status == 404, (path, answer.status, body[:200])


def test_splitbrain_serve_binds_127_0_0_1(runs: Runs) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", str(runs.root), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket is bound
        found = re.search(r"http://(127\.0\.0\.1):(\d+)/", line)
        assert found, line
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, page = get(f"http://127.0.0.1:{found.group(2)}/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert status == 200 and "laggy" in page
    finally:
        process.terminate()
        process.wait(30)
