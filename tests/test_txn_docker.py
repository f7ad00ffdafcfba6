"""Transactions end to end on etcd 3.4 in Docker (3 nodes, v2 off, short runs): list-append
and rw-register with linearizable reads stay strict serializable under partitions, leader
kills and pauses; with serializable reads under partitions, stale reads are found as realtime
cycles and `splitbrain run` says so. Without Docker these skip, except under CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.progress import Progress
from harness.results import EXIT_INVALID, EXIT_VALID
from harness.runner import run
from harness.spec import load, override
from tests.test_harness import ROOT, assert_nothing_left, docker, results_of

__all__ = ["docker"]  # the fixture, from test_harness
SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261130"))


@pytest.mark.parametrize("workload", ["append", "wr"])
def test_linearizable_reads_are_strict_serializable_under_faults(
        docker: Any, tmp_path: Path, workload: str) -> None:
    spec = override(load(ROOT / "specs" / f"etcd-{workload}.yaml"), time_limit=15, seed=SEED,
                    results=str(tmp_path))
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    where = f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert outcome.exit_code == EXIT_VALID, where
    txn = results["checkers"]["txn"]
    assert txn["verdict"] == "valid" and txn["consistency_models"] == ["strict-serializable"]
    assert results["stats"]["ops"]["txn"]["ok"] > 100, where
    kinds = {f["f"] for f in results["stats"]["faults"]}
    assert len(kinds & {"partition", "kill", "pause"}) >= 2, where
    assert results["system"]["version"].startswith("3.4")
    assert_nothing_left(docker, outcome.results.run_id)


def test_serializable_reads_are_found_stale_and_the_run_says_how(
        docker: Any, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run",
         str(ROOT / "specs" / "etcd-append-serializable.yaml"), "--seed", str(SEED),
         "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    out = proc.stdout
    assert proc.returncode == EXIT_INVALID, f"seed {SEED}: {out[-3000:]}{proc.stderr[-2000:]}"
    results = results_of(tmp_path / "latest")
    txn = results["checkers"]["txn"]
    realtime = [a for a in txn["anomalies"] if a["name"].endswith("-realtime")]
    assert realtime, f"seed {SEED}: {txn['anomaly_counts']}"
    first = txn["anomalies"][0]
    assert "etcd-append-serializable: INVALID" in out and "  txn: INVALID (" in out
    assert f"    {first['name']}: {first['explanation'][0]}" in out
    assert any(line.startswith("    not ") and "strict-serializable" in line
               for line in out.splitlines()), out
    stale = next(s for a in realtime for s in a["cycle"] if s["rel"] == "rw")
    assert "did not see" in stale["explanation"]
    assert (tmp_path / "latest" / "report.html").is_file()
    assert_nothing_left(docker)


def test_our_store_s_transactions_are_strict_serializable_under_faults(
        docker: Any, tmp_path: Path) -> None:
    spec = override(load(ROOT / "specs" / "store-append.yaml"), time_limit=15, seed=SEED,
                    results=str(tmp_path))
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    where = f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert outcome.exit_code == EXIT_VALID, where
    assert results["checkers"]["txn"]["verdict"] == "valid", where
    assert results["stats"]["ops"]["txn"]["ok"] > 100, where
    assert len({f["f"] for f in results["stats"]["faults"]}) >= 2, where
    assert_nothing_left(docker, outcome.results.run_id)
