"""Whether the faults of a run took effect, read from its history's nemesis operations
(a failing fault in a real run: tests/test_harness.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from checker.history import NEMESIS, Op
from nemesis.outcomes import fault_outcomes

SEED = 19

S = 10**9  # history times are nanoseconds


def nemesis_ops(*steps: tuple[str, object, str | None, float]) -> list[Op]:
    """(f, value, error of its completion, seconds) -> the request and what was done, both
    `info`, as the recorder writes a nemesis operation."""
    ops: list[Op] = []
    for f, value, error, at in steps:
        ops.append(Op(len(ops), NEMESIS, "info", f, value, time=int(at * S)))
        ops.append(Op(len(ops), NEMESIS, "info", f, value, time=int(at * S) + 1, error=error))
    return ops


def test_every_fault_took_effect_says_nothing() -> None:
    ops = nemesis_ops(("kill", "leader", None, 1), ("restart", None, None, 2),
                      ("kill", "random", None, 3), ("heal", None, None, 4))
    outcomes = fault_outcomes(ops)
    assert (outcomes.asked, outcomes.took_effect, outcomes.failed) == (2, 2, [])
    assert outcomes.notes() == []


def test_some_faults_failed_names_the_first_and_counts() -> None:
    ops = nemesis_ops(("kill", "all", None, 1), ("pause", "all", "NodeDown: n1 is down", 2.04),
                      ("kill", "leader", "every node killed", 3), ("heal", None, None, 4))
    assert fault_outcomes(ops).notes() == [
        "1 of 3 faults took effect; 2 failed: pause all at 2.0 s: NodeDown: n1 is down "
        "(and 1 more)"
    ]


def test_a_fault_that_hit_some_of_its_nodes_failed_in_part() -> None:
    ops = nemesis_ops(("pause", "all", "n1: NodeDown: n1 is down", 2))
    ops[1] = Op(1, NEMESIS, "info", "pause", {"target": "all", "nodes": ["n2", "n3"]},
                time=ops[1].time, error=ops[1].error)
    outcomes = fault_outcomes(ops)
    assert (outcomes.took_effect, len(outcomes.failed), outcomes.in_part) == (0, 1, 1)
    assert outcomes.notes() == [
        "0 of 1 faults took effect; 1 failed (1 in part): pause all at 2.0 s: "
        "n1: NodeDown: n1 is down"
    ]


def test_no_fault_took_effect_says_the_run_tested_no_fault() -> None:
    ops = nemesis_ops(("pause", "leader", "DockerError: cannot send SIGSTOP", 5),
                      ("resume", None, None, 6))
    (note,) = fault_outcomes(ops).notes()
    assert note.startswith("0 of 1 faults took effect: the nemesis never injected a fault")
    assert note.endswith("first failure: pause leader at 5.0 s: DockerError: cannot send SIGSTOP")


def test_a_long_error_is_one_short_line_in_the_note() -> None:
    error = "DockerError: cannot send SIGSTOP\n" + "x" * 5000
    (note,) = fault_outcomes(nemesis_ops(("pause", "leader", error, 5))).notes()
    assert "\n" not in note and len(note) < 500 and note.endswith("SIGSTOP " + "x" * 267 + "...")


def test_faults_configured_but_never_scheduled_are_said() -> None:
    assert fault_outcomes([]).notes(configured=True) == [
        "0 faults took effect: the schedule started none before the run ended, so this "
        "run tested the system without faults"
    ]
    assert fault_outcomes([]).notes(configured=False) == []


def test_client_operations_and_recoveries_are_not_faults() -> None:
    client = [Op(0, 0, "invoke", "write", 1, time=0), Op(1, 0, "info", "write", 1, time=1,
                                                        error="timeout")]
    ops = client + nemesis_ops(("heal-partition", None, "failed", 1))
    outcomes = fault_outcomes(ops)
    assert (outcomes.asked, outcomes.failed) == (0, [])


def test_a_fault_never_completed_is_unfinished_not_failed() -> None:
    ops = nemesis_ops(("kill", "leader", None, 1))
    ops.append(Op(2, NEMESIS, "info", "kill", "random", time=3 * S))
    outcomes = fault_outcomes(ops)
    assert (outcomes.asked, outcomes.took_effect, outcomes.unfinished) == (2, 1, 1)
    assert outcomes.notes() == []


def test_a_real_run_whose_schedule_started_no_fault_says_so(tmp_path: Path) -> None:
    """Faults named, but the run ends before the first `heal` period is over (local
    backend, 2 s of a 10 s heal): the run says it tested no fault; the verdict stands."""
    spec = tmp_path / "short.yaml"
    spec.write_text(
        f"name: short\nbackend: local\nnodes: 3\nconcurrency: 3\ntime_limit: 2\nseed: {SEED}\n"
        "nemesis: {faults: [kill], schedule: {heal: 10, fault: 2}}\n"
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "splitbrain"), "run", str(spec), "--results",
         str(tmp_path / "results")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    results = json.loads((tmp_path / "results" / "latest" / "results.json").read_text())
    assert done.returncode == 0 and results["valid"] is True, (SEED, done.stdout, done.stderr)
    note = ("0 faults took effect: the schedule started none before the run ended, so this "
            "run tested the system without faults")
    assert results["notes"] == [note], results["notes"]
    assert f"note: {note}" in done.stdout
