"""`splitbrain hunt` and the verdict lines it (and bench/detection.py) reads from a
run's folder: a real hunt of two short runs of our store on local processes, and the
first violation of a history the real checker finds invalid."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from checker.verdict import Verdict
from harness.check import recheck
from harness.cli import main
from harness.hunt import HuntPlan, HuntResult, HuntRun, parse_budget
from harness.results import write_spec
from harness.spec import parse
from harness.verdicts import RunError, RunVerdict, read_run

SHORT = {"name": "short", "system": "store", "backend": "local", "nodes": 3,
         "concurrency": 3, "time_limit": 2, "workload": {"name": "register",
                                                        "ops_per_key": 30}}


def test_a_hunt_runs_each_seed_in_its_own_folder_and_sums_them_up(tmp_path: Path) -> None:
    spec = tmp_path / "short.yaml"
    spec.write_text(yaml.safe_dump(SHORT))
    out = tmp_path / "hunt"
    code = main(["hunt", str(spec), "--runs", "2", "--results", str(out)])
    hunt = json.loads((out / "hunt.json").read_text())
    assert code == 0 and hunt["exit_code"] == 0, hunt
    assert hunt["counts"] == {"valid": 2, "invalid": 0, "unknown": 0, "error": 0}
    assert [r["seed"] for r in hunt["runs"]] == [1, 2]
    for run in hunt["runs"]:
        results = json.loads((Path(run["run_dir"]) / "results.json").read_text())
        assert results["spec"]["seed"] == run["seed"] and results["valid"] is True
    cases = ET.parse(out / "junit.xml").getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["seed 1", "seed 2"]
    assert all(c.find("failure") is None for c in cases)


def test_a_hunt_stops_at_the_first_invalid_run(tmp_path: Path) -> None:
    """Quorum reads served from each member's own state (a planted bug) are stale right
    after writes through another member: the first run is invalid, the hunt stops."""
    spec = tmp_path / "stale.yaml"
    spec.write_text(yaml.safe_dump({
        **SHORT, "concurrency": 6, "time_limit": 4,
        "system_options": {"failpoints": ["read-without-readindex"]},
        "workload": {"name": "register", "group_size": 3, "writers": 1, "ops_per_key": 60}}))
    out = tmp_path / "hunt"
    code = main(["hunt", str(spec), "--runs", "3", "--results", str(out)])
    hunt = json.loads((out / "hunt.json").read_text())
    assert code == 1 and hunt["counts"]["invalid"] == 1 and len(hunt["runs"]) == 1, hunt
    violation = hunt["runs"][0]["first_violation"]
    # The refutation ("... cannot take effect: ...") or the zone procedure ("... could
    # only be N then") decides it, depending on the interleaving the run happened to have.
    why = violation["explanation"]
    assert violation["at_s"] < 4.5 and "read" in why, violation
    assert "cannot take effect" in why or "could only be" in why, violation
    [failed] = ET.parse(out / "junit.xml").getroot().findall(".//testcase")
    assert failed.find("failure") is not None


def _invalid_run(tmp_path: Path) -> Path:
    """A run's folder whose history loses a write after a partition: the checker's."""
    run = tmp_path / "run"
    (run / "nodes").mkdir(parents=True)
    write_spec(run / "spec.yaml", parse({"name": "lost", "nemesis": {"faults": ["partition"]}}))
    (run / "results.json").write_text(json.dumps({"run_id": "1"}))
    s = 1_000_000_000
    ops = [
        (0, "invoke", "write", 1, 0), (0, "ok", "write", 1, s // 10),
        ("nemesis", "info", "partition", "isolate-leader", 2 * s),
        ("nemesis", "info", "partition", {"kind": "isolate-leader", "leader": "n1"}, 2 * s + 5),
        (0, "invoke", "write", 2, 3 * s), (0, "ok", "write", 2, 3 * s + 10),
        ("nemesis", "info", "heal", None, 4 * s), ("nemesis", "info", "heal", {}, 4 * s + 5),
        (1, "invoke", "read", None, 5 * s), (1, "ok", "read", 1, 5 * s + 500_000_000),
    ]
    lines = []
    for i, (process, kind, f, value, t) in enumerate(ops):
        op = {"index": i, "process": process, "type": kind, "f": f, "time": t, "value": value}
        if process != "nemesis":
            op["key"] = "r0"
        lines.append(json.dumps(op))
    (run / "history.jsonl").write_text("\n".join(lines) + "\n")
    recheck(run)
    return run


def test_the_first_violation_is_timed_and_follows_the_last_fault(tmp_path: Path) -> None:
    outcome = read_run(_invalid_run(tmp_path), 1)
    v = outcome.violation
    assert outcome.verdict is Verdict.INVALID and v is not None
    assert v.key == "r0" and v.at_s == pytest.approx(5.5)
    assert v.fault is not None and v.fault.f == "partition" and v.fault.value["leader"] == "n1"
    assert v.after_fault_s == pytest.approx(3.5, abs=1e-6)


def test_exit_codes_and_junit_of_a_hunt(tmp_path: Path) -> None:
    plan = HuntPlan("specs/demo.yaml", tmp_path, 3, None)
    bad = read_run(_invalid_run(tmp_path), 1)
    result = HuntResult(plan, [HuntRun(1, 0, 1.0, RunVerdict(Verdict.VALID, None, 1.0, None)),
                               HuntRun(2, 2, 1.0, RunVerdict(Verdict.UNKNOWN, None, 1.0, None))])
    assert result.exit_code == 2
    result.runs.append(HuntRun(3, 1, 1.0, bad))
    assert result.exit_code == 1
    assert "first invalid: seed 3, violation at 5.5 s" in result.table()
    cases = result.junit().findall(".//testcase")
    assert [c.find("failure") is not None for c in cases] == [False, False, True]
    assert cases[1].find("skipped") is not None
    errored = HuntResult(plan, [HuntRun(1, 3, 1.0, RunVerdict(RunError(3), None, None, None))])
    assert errored.exit_code == 3
    assert errored.to_json()["counts"] == {"valid": 0, "invalid": 0, "unknown": 0, "error": 1}
    assert errored.to_json()["runs"][0]["verdict"] == "error"
    assert result.to_json()["counts"] == {"valid": 1, "invalid": 1, "unknown": 1, "error": 0}


def test_bad_hunt_arguments_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_budget("30m") == 1800 and parse_budget("90") == 90 and parse_budget("2h") == 7200
    assert main(["hunt", "specs/demo.yaml", "--budget", "soon"]) == 3
    assert "--budget: expected a duration such as 90s" in capsys.readouterr().err
    assert main(["hunt", "specs/demo.yaml", "--parallel", "0"]) == 3
    assert main(["hunt", str(tmp_path / "missing.yaml")]) == 3


def test_a_hunt_passes_the_ssh_backend_and_its_hosts_to_each_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parsed and passed on as `run` takes them; checked once before any run. The hosts
    here refuse SSH (port 1), so each run is refused in its set-up: exit 3, a results.json
    that still follows its schema."""
    from tests.test_run_lifecycle import results_of

    spec = tmp_path / "hunt-ssh.yaml"
    spec.write_text(yaml.safe_dump({**SHORT, "name": "hunt-ssh", "ssh": {"port": 1}}))
    assert main(["hunt", str(spec), "--backend", "ssh"]) == 3
    assert "ssh'.hosts: the ssh backend needs hosts (or --hosts)" in capsys.readouterr().err
    assert main(["hunt", str(spec), "--backend", "ssh", "--hosts", "127.0.0.1",
                 "--parallel", "2"]) == 3  # fmt: skip
    assert "one run at a time" in capsys.readouterr().err
    out = tmp_path / "hunt"
    code = main(["hunt", str(spec), "--runs", "1", "--results", str(out),
                 "--backend", "ssh", "--hosts", "127.0.0.1"])  # fmt: skip
    assert code == 3, capsys.readouterr()
    summary = json.loads((out / "hunt.json").read_text())
    assert summary["run_args"] == ["--backend", "ssh", "--hosts", "127.0.0.1"], summary
    run_dir = next((out / "seed-0001").glob("hunt-ssh/2*"))
    results = results_of(run_dir)
    assert results["spec"]["backend"] == "ssh" and results["spec"]["ssh"]["hosts"] == [
        "127.0.0.1"] and results["spec"]["nodes"] == 1
    assert "host 127.0.0.1" in results["error"] and "history" not in results["files"], results
