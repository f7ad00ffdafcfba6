"""The `stats` checker: a run is valid only if something succeeded, and, in a run with
faults, something invoked after the final heal: otherwise the end state was never read
and the verdict is unknown, whatever the other checkers say."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.history import NEMESIS, Op
from checker.stats import compute
from checker.verdict import Verdict
from harness.checkers import CHECKERS, CheckJob
from harness.spec import parse
from harness.workload import make_workload

S = 1_000_000_000  # ns


def ops_of(*events: tuple[int | str, str, str, float]) -> list[Op]:
    """(process, type, f, seconds) in order; values are not looked at."""
    return [Op(i, p, t, f, 1 if f != "heal" else None, "k", int(at * S))  # type: ignore[arg-type]
            for i, (p, t, f, at) in enumerate(events)]


MAIN = (
    (0, "invoke", "write", 0.1), (0, "ok", "write", 0.2),
    (NEMESIS, "invoke", "partition", 1.0), (NEMESIS, "info", "partition", 1.1),
    (0, "invoke", "read", 2.0), (0, "ok", "read", 2.1),
    (NEMESIS, "invoke", "heal", 3.0), (NEMESIS, "info", "heal", 3.1),
)


def judged(ops: list[Op], tmp_path: Path) -> dict:
    spec = parse({"name": "t", "system": "store", "nodes": 3, "time_limit": 5,
                  "workload": {"name": "register"}})
    job = CheckJob(spec, make_workload("register", 1, {}), tmp_path / "history.jsonl",
                   compute(ops))
    return CHECKERS["stats"].check(job)


def test_a_run_whose_final_reads_all_failed_is_unknown(tmp_path: Path) -> None:
    ops = ops_of(*MAIN,
                 # invoked before the heal, done after: says nothing of the end state
                 (1, "invoke", "read", 2.9), (1, "ok", "read", 3.2),
                 (0, "invoke", "read", 4.0), (0, "info", "read", 6.0),
                 (1, "invoke", "read", 4.0), (1, "fail", "read", 4.1))
    assert compute(ops).ok_after_nemesis == 0
    entry = judged(ops, tmp_path)
    assert Verdict.of(entry["valid"]) is Verdict.UNKNOWN
    assert entry["reason"] == ("no client operation invoked after the final heal "
                               "succeeded: the end state was never read")
    assert "never read" in CHECKERS["stats"].detail(entry)


@pytest.mark.parametrize("after", [1, 3])
def test_one_read_of_the_end_state_is_enough(after: int, tmp_path: Path) -> None:
    reads = [e for i in range(after)
             for e in ((0, "invoke", "read", 4.0 + i), (0, "ok", "read", 4.1 + i))]
    ops = ops_of(*MAIN, *reads)
    assert compute(ops).ok_after_nemesis == after
    entry = judged(ops, tmp_path)
    assert Verdict.of(entry["valid"]) is Verdict.VALID and "reason" not in entry
    assert CHECKERS["stats"].detail(entry) == ""


def test_a_run_without_faults_needs_only_some_success(tmp_path: Path) -> None:
    ops = ops_of((0, "invoke", "write", 0.1), (0, "ok", "write", 0.2))
    assert compute(ops).ok_after_nemesis is None
    assert Verdict.of(judged(ops, tmp_path)["valid"]) is Verdict.VALID


def test_a_run_where_nothing_succeeded_says_so(tmp_path: Path) -> None:
    ops = ops_of((0, "invoke", "write", 0.1), (0, "fail", "write", 0.2))
    entry = judged(ops, tmp_path)
    assert Verdict.of(entry["valid"]) is Verdict.UNKNOWN
    assert entry["reason"] == "no client operation succeeded"


def test_the_report_says_why_the_verdict_is_unknown(tmp_path: Path) -> None:
    from harness.report.build import headline
    from harness.report.checked import Checked

    ops = ops_of(*MAIN, (0, "invoke", "read", 4.0), (0, "info", "read", 6.0))
    entry = judged(ops, tmp_path)
    css, sentence, reasons = headline({"valid": "unknown", "stats": compute(ops).to_json()},
                                      Checked.from_json({"stats": entry}))
    assert css == "unknown" and sentence.startswith("Unknown")
    assert reasons == [f"stats: {entry['reason']}"]
