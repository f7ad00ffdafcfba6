"""`splitbrain check`: verdicts, JSON output, exit codes, usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checker.formats import write_jsonl
from checker.simulate import Workload, simulate
from harness.cli import main
from tests.histories import _, history

VALID = history((0, "invoke", "write", 1), (0, "ok", "write", 1),
                (1, "invoke", "read", _), (1, "ok", "read", 1))
INVALID = history((0, "invoke", "write", 1), (0, "ok", "write", 1),
                  (1, "invoke", "read", _), (1, "ok", "read", 2))


def jsonl(tmp_path: Path, name: str, ops: list) -> str:
    path = tmp_path / name
    path.write_text("".join(write_jsonl(o) for o in ops))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_invalid_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = jsonl(tmp_path, "good.jsonl", VALID), jsonl(tmp_path, "bad.jsonl", INVALID)
    code, out, _err = run(capsys, "check", good)
    assert code == 0 and "valid" in out and "model etcd" in out
    code, out, _err = run(capsys, "check", good, bad)
    assert code == 1 and "NOT LINEARIZABLE" in out and "read 2 needs a value" in out
    code, out, _err = run(capsys, "check", "--json", "--model", "register", good, bad)
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["file"], r["valid"], r["model"]) for r in lines] == [
        (good, True, "register"), (bad, False, "register")]
    for r in lines:
        assert r["ops"] == 2 and r["events"] == 4 and isinstance(r["seconds"], float)
    ce = lines[1]["keys"][0]["counterexample"]
    assert ce["op"]["description"] == "read 2" and ce["window"]["ops"]


def test_init_value_is_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reads_zero = jsonl(tmp_path, "zero.jsonl",
                       history((1, "invoke", "read", _), (1, "ok", "read", 0)))
    assert run(capsys, "check", "--model", "register", "--init", "0", reads_zero)[0] == 0
    assert run(capsys, "check", "--model", "register", "--init", "5", reads_zero)[0] == 1
    code, _out, err = run(capsys, "check", "--init", "{oops", reads_zero)
    assert code == 3 and "--init is not JSON" in err


def test_unknown_verdict_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ops = simulate(5, Workload(kind="etcd", ops=3000, processes=10, keys=1, p_info=0.05))
    path = jsonl(tmp_path, "big.jsonl", ops)
    code, out, _err = run(capsys, "check", "--time-limit", "0.000001", path)
    assert code == 2 and "unknown" in out and "time limit" in out


def test_bad_input_exits_3_and_still_checks_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(write_jsonl(VALID[0]) + "{not json\n")
    good = jsonl(tmp_path, "good.jsonl", VALID)
    code, out, err = run(capsys, "check", "--json", str(broken), good)
    assert code == 3
    assert f"{broken}:2: not a JSON object" in err and "Traceback" not in err
    results = [json.loads(line) for line in out.splitlines()]
    assert results[0]["error"] and results[1]["valid"] is True


@pytest.mark.parametrize(
    "argv",
    [["check"], ["check", "--model", "nope", "x"], ["check", "--time-limit", "-1", "x"],
     ["frobnicate"], ["check", "--format", "xml", "x"]],
)
def test_usage_errors_exit_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, *argv)
    assert code == 3 and "usage:" in err


def test_console_script_installed(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "splitbrain"
    if not exe.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exe} is missing: make install should create it")
        pytest.skip("not running from the project's .venv")
    path = jsonl(tmp_path, "bad.jsonl", INVALID)
    proc = subprocess.run([str(exe), "check", path], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1 and "NOT LINEARIZABLE" in proc.stdout


def test_a_time_limit_reached_while_reading_gives_unknown(tmp_path: Path) -> None:
    from checker import check_file

    ops = simulate(5, Workload(kind="etcd", ops=5000, processes=10, keys=1, p_info=0.05))
    path = jsonl(tmp_path, "long.jsonl", ops)
    result = check_file(path, time_limit=1e-9)
    assert result.result.valid == "unknown"
    assert "while reading" in (result.result.keys[0].reason or "")
    assert 0 < (result.result.events or 0) < len(ops)


def test_a_run_summary_names_the_earliest_violation_first() -> None:
    """`splitbrain run`'s verdict line counts the invalid keys, lists them earliest
    violation first and quotes the first one's explanation."""
    from checker import check_operations, make_model, pair
    from checker.simulate import keyed_register_history
    from harness.checkers import named

    ops = keyed_register_history(5, keys=6, ops_per_key=60, processes=4)
    result = check_operations(make_model("kv", None), list(pair(ops)), workers=1,
                              max_explained=2)
    bad = result.first_violations()
    assert len(bad) >= 2, "seed 5"
    line = named("linearizable").detail(result.to_json(max_counterexamples=2))
    assert f"{len(bad)} not linearizable, the earliest first: {bad[0].key}, {bad[1].key}" in line
    brief = bad[0].brief()
    assert brief is not None and f"first violation: {brief.explanation}" in line
