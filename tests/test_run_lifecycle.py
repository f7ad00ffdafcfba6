"""How a run ends, whatever happens to it (docs/harness.md, "Exit codes"): an honest exit
code, results.json saying what happened, nothing of the run left in Docker, and what was
recorded kept.

Exit 1 only ever means a checker found the history invalid; 3 an error of the harness,
the spec or the environment; 2 an interruption or a checker out of budget. The signal
tests drive a real `splitbrain run` subprocess and wait (with a deadline) for the phase
they interrupt: a line it prints, or a line of its history or harness.log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.results import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_UNKNOWN,
    EXIT_VALID,
    RunResults,
    run_exit_code,
)
from harness.spec import parse

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261205"))
SPLITBRAIN = [sys.executable, "-m", "harness.cli"]


@dataclass
class Cli:
    """A `splitbrain` subprocess whose output is read as it comes."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, *argv: str, env: dict[str, str] | None = None) -> Cli:
        process = subprocess.Popen(
            [*SPLITBRAIN, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env, start_new_session=True,
        )  # fmt: skip
        cli = cls(process)
        cli.reader = threading.Thread(target=cli._read, daemon=True)
        cli.reader.start()
        return cli

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                self.finish(5)
                raise AssertionError(f"the run ended before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout} s:\n{self.output}")
            time.sleep(0.02)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def finish(self, timeout: float = 180) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        assert self.reader is not None
        self.reader.join(5)
        return code


@pytest.fixture
def cli() -> Iterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for c in started:
        if c.process.poll() is None:
            c.process.kill()
            c.process.wait()


def write_spec(tmp_path: Path, **fields: Any) -> Path:
    spec = {
        "name": "lifecycle", "system": "store", "backend": "local", "nodes": 3,
        "concurrency": 10, "time_limit": 8, "seed": SEED,
        "workload": {"name": "register", "ops_per_key": 60},
    }  # fmt: skip
    spec.update(fields)
    parse(spec)  # a spec the harness takes
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def results_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())


def history_lines(run_dir: Path) -> list[str]:
    path = run_dir / "history.jsonl"
    return path.read_text().splitlines() if path.exists() else []


# -- the rule


def results_with(*verdicts: Any, error: str | None = None, interrupted: bool = False) -> RunResults:
    spec = parse({"name": "rule"})
    results = RunResults("rule", "r", spec, 0.0, error=error, interrupted=interrupted)
    for i, valid in enumerate(verdicts):
        results.checkers[f"c{i}"] = {"valid": valid}
    return results


@pytest.mark.parametrize(
    ("verdicts", "error", "interrupted", "code"),
    [
        ((True, True), None, False, EXIT_VALID),
        ((True, False), None, False, EXIT_INVALID),
        ((True, False), "the disk is full", True, EXIT_INVALID),  # a finding stays one
        ((True, "unknown"), None, False, EXIT_UNKNOWN),  # a checker out of budget
        ((True, True), None, True, EXIT_UNKNOWN),  # interrupted, checked
        ((), None, True, EXIT_UNKNOWN),  # interrupted before anything ran
        ((True, True), "the disk is full", False, EXIT_ERROR),
        ((), "no Docker", False, EXIT_ERROR),
        ((), "no Docker", True, EXIT_ERROR),
        ((), None, False, EXIT_UNKNOWN),  # never valid without a check
    ],
)
def test_exit_1_means_invalid_and_nothing_else(
    verdicts: tuple[Any, ...], error: str | None, interrupted: bool, code: int
) -> None:
    results = results_with(*verdicts, error=error, interrupted=interrupted)
    assert run_exit_code(results) == code
    if not verdicts:
        assert results.verdict == "unknown" and results.to_json()["valid"] == "unknown"


def test_the_rule_is_in_the_docs() -> None:
    text = (ROOT / "docs" / "harness.md").read_text()
    assert "exit 1 only ever means a checker found the history invalid" in text.lower()


# -- the results folder


@pytest.mark.parametrize("where", ["/proc/nope", "a-file", "a-file/below"])
def test_a_results_folder_that_cannot_be_made_is_one_line_and_starts_nothing(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    results = where if where.startswith("/") else str(tmp_path / where)
    spec = write_spec(tmp_path)
    done = subprocess.run([*SPLITBRAIN, "run", str(spec), "--results", results], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == EXIT_ERROR, done
    assert done.stderr.count("\n") == 1 and results in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "starting" not in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "spec.yaml"]


# -- signals on the local backend


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_check_lets_it_finish(
    tmp_path: Path, cli: list[Cli], sig: signal.Signals
) -> None:
    run = Cli.start("run", str(write_spec(tmp_path)), "--results", str(tmp_path / "r"))
    cli.append(run)
    run.wait_for(lambda: run.said("checking "), "the check")
    run.process.send_signal(sig)
    code = run.finish()
    run_dir = (tmp_path / "r" / "latest").resolve()
    log = (run_dir / "harness.log").read_text()
    assert f"{sig.name} during check" in log, f"the signal did not land in the check:\n{log}"
    results = results_of(run_dir)
    assert code == EXIT_UNKNOWN, f"seed {SEED}:\n{run.output}"
    assert results["interrupted"] is True and results["error"] is None
    assert results["checkers"]["linearizable"]["valid"] is True, results["checkers"]
    assert results["checkers"]["linearizable"]["key_count"] > 0
    assert "valid (interrupted)" in run.output and "Traceback" not in run.output
    assert (run_dir / "report.html").is_file()


def test_a_signal_during_cluster_start_is_never_valid(tmp_path: Path, cli: list[Cli]) -> None:
    run = Cli.start("run", str(write_spec(tmp_path)), "--results", str(tmp_path / "r"))
    cli.append(run)
    run.wait_for(lambda: run.said("starting 3 store nodes"), "the cluster start")
    run.process.send_signal(signal.SIGINT)
    code = run.finish()
    results = results_of((tmp_path / "r" / "latest").resolve())
    assert code == EXIT_UNKNOWN, run.output
    assert results["valid"] == "unknown" and results["interrupted"] is True, results
    assert results["checkers"] == {} and results["error"] is None
    assert "unknown (interrupted)" in run.output and "valid (" not in run.output


def test_report_checks_the_history_a_killed_run_left(tmp_path: Path, cli: list[Cli]) -> None:
    run = Cli.start("run", str(write_spec(tmp_path, time_limit=60)),
                    "--results", str(tmp_path / "r"))  # fmt: skip
    cli.append(run)
    run_dir = tmp_path / "r" / "latest"
    run.wait_for(lambda: len(history_lines(run_dir)) > 2000, "2000 lines of history")
    run.process.kill()  # SIGKILL: no clean-up, no results.json
    run.finish()
    run_dir = run_dir.resolve()
    assert not (run_dir / "results.json").exists()
    ops = len(history_lines(run_dir))
    done = subprocess.run([*SPLITBRAIN, "report", str(run_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    output = done.stdout + done.stderr
    results = results_of(run_dir)
    # the store is linearizable: the history checks valid, and the run was not finished
    assert done.returncode == EXIT_UNKNOWN, output
    assert results["checkers"]["linearizable"]["valid"] is True, output
    assert results["interrupted"] is True and results["valid"] is True
    assert any("unfinished run" in note for note in results["notes"]), results["notes"]
    assert results["run_id"] and results["spec"]["seed"] == SEED
    assert sum(results["stats"]["ops"][f].get("ok", 0) for f in results["stats"]["ops"]) > 0
    assert len(history_lines(run_dir)) == ops  # the history is read, never rewritten
    assert (run_dir / "report.html").is_file() and "unfinished run" in (
        run_dir / "report.html"
    ).read_text()
    for name in results["files"].values():
        assert (run_dir / name).exists(), name
