"""A finished run in one line: its verdict, and when its first violation happened and
after which fault (for `splitbrain hunt` and bench/detection.py).

Read from the run's folder (results.json and history.jsonl, docs/harness.md): the first
violation is the culprit of the linearizability checker's earliest counterexample (the
operation that could not take effect), timed at its completion (when a client saw it)
or, for one that never completed, its invocation, in seconds from the workload's start
(the history's clock). The exposing fault is the last fault the nemesis completed
before that time (a start or a stage of a composed fault; heals are not faults),
timed at its completion, when it was in force.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.stats import RECOVERIES
from checker.verdict import Verdict


@dataclass(frozen=True)
class FaultAt:
    f: str
    value: Any
    at_s: float

    def to_json(self) -> dict[str, Any]:
        return {"f": self.f, "value": self.value, "at_s": round(self.at_s, 3)}


@dataclass(frozen=True)
class Violation:
    key: Any
    at_s: float  # seconds from the workload's start
    explanation: str
    fault: FaultAt | None  # the last fault started before it

    @property
    def after_fault_s(self) -> float | None:
        return None if self.fault is None else self.at_s - self.fault.at_s

    def to_json(self) -> dict[str, Any]:
        after = self.after_fault_s
        return {"key": self.key, "at_s": round(self.at_s, 3), "explanation": self.explanation,
                "fault": None if self.fault is None else self.fault.to_json(),
                "after_fault_s": None if after is None else round(after, 3)}


@dataclass(frozen=True)
class RunError:
    """A run that gave no verdict: the harness, the spec or the environment failed
    (`splitbrain run` exit 3, or a child that died another way)."""

    exit_code: int

    @property
    def word(self) -> str:
        return ERROR


ERROR = "error"  # a RunError's word in hunt.json, JUnit and the summary lines
Outcome = Verdict | RunError


@dataclass(frozen=True)
class RunVerdict:
    """`verdict`: the checkers' verdict (as the exit code said), or a RunError."""

    verdict: Outcome
    run_dir: Path | None
    duration_s: float | None
    violation: Violation | None
    error: str | None = None

    @property
    def word(self) -> str:
        """valid, invalid, unknown or error: hunt.json's `verdict`."""
        return self.verdict.word if isinstance(self.verdict, RunError) else self.verdict.value


def is_fault(f: str) -> bool:
    return f not in RECOVERIES


def verdict_of(exit_code: int) -> Outcome:
    """`splitbrain run`'s exit code as an outcome (0 valid, 1 invalid, 2 unknown)."""
    by_code = {0: Verdict.VALID, 1: Verdict.INVALID, 2: Verdict.UNKNOWN}
    return by_code.get(exit_code) or RunError(exit_code)


def first_violation(run_dir: Path) -> Violation | None:
    """The run's earliest linearizability violation, timed; None when there is none."""
    from checker.linearizable import CheckResult

    results = json.loads((run_dir / "results.json").read_text())
    checked = (results.get("checkers") or {}).get("linearizable")
    if not checked or checked.get("valid") is not False:
        return None
    bad = CheckResult.from_json(checked).first_violations()
    brief = bad[0].brief() if bad else None
    if brief is None:
        return None
    wanted = brief.op.completed if brief.op.completed is not None else brief.op.invoked
    at: float | None = None
    last_fault: FaultAt | None = None
    invoked = False  # the nemesis does one operation at a time: invoke, complete, ...
    with open(run_dir / "history.jsonl") as history:
        for line in history:
            op = json.loads(line)
            t = op.get("time", 0) / 1e9
            if op.get("index") == wanted:
                at = t
                break
            if op.get("process") == "nemesis":
                if invoked and is_fault(str(op.get("f"))):  # in force from its completion
                    last_fault = FaultAt(str(op.get("f")), op.get("value"), t)
                invoked = not invoked
    if at is None:
        return None
    return Violation(bad[0].key, at, brief.explanation, last_fault)


def read_run(run_dir: Path | None, exit_code: int) -> RunVerdict:
    """What a run's folder says, with the exit code of the `splitbrain run` that made it."""
    verdict = verdict_of(exit_code)
    if run_dir is None or not (run_dir / "results.json").is_file():
        return RunVerdict(verdict, run_dir, None, None, "no results.json")
    results = json.loads((run_dir / "results.json").read_text())
    violation = first_violation(run_dir) if verdict is Verdict.INVALID else None
    return RunVerdict(verdict, run_dir, results.get("duration_s"), violation,
                      results.get("error"))
