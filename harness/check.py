"""From a stored history to verdicts: the workload's checkers and the statistics.

The one path from history.jsonl to results: `splitbrain run` calls `check_history` after
the cluster is down, `splitbrain report` calls `recheck` on a stored run. The report
renders what these wrote; it runs no checker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from checker.check import check_file
from checker.history import NEMESIS, Op
from checker.set_full import check_set_full
from checker.stats import compute as compute_stats
from harness.recorder import stream_history
from harness.results import RunResults, _iso, existing_files, load_run_spec, write_json
from harness.spec import Spec
from harness.workload import make_workload
from nemesis.outcomes import fault_notes

NO_OK_NOTE = "no client operation succeeded: the verdicts say little"
MAX_COUNTEREXAMPLES = 20  # full in results.json, earliest violation first; others summarised


def check_history(spec: Spec, history: Path, results: RunResults) -> None:
    """The workload's checkers and the statistics, into results (also `splitbrain report`).
    Each reads history.jsonl streaming: memory bounded by what one key (the
    linearizability check) or the faults and latency buckets (the statistics) need, not
    by the history's length."""
    workload = make_workload(spec.workload.name, spec.concurrency, spec.workload.options)
    if "linearizable" in workload.checkers and workload.model is not None:
        checked = check_file(
            str(history), workload.model, None, "jsonl",
            time_limit=spec.checker.time_limit,
            memory_limit=int(spec.checker.memory_limit_mb * 2**20),
            max_explained=MAX_COUNTEREXAMPLES,
        )  # fmt: skip
        results.checkers["linearizable"] = checked.result.to_json(
            max_counterexamples=MAX_COUNTEREXAMPLES)
    if "txn" in workload.checkers:
        from checker.txn.check import check_file as check_txn_file

        fr = check_txn_file(str(history), workload.name, workload.consistency_models,
                            "jsonl", time_limit=spec.checker.time_limit)
        results.checkers["txn"] = fr.result.to_json()
    if "set-full" in workload.checkers:
        linearizable = bool(spec.workload.options.get("linearizable", True))
        results.checkers["set-full"] = check_set_full(stream_history(history),
                                                         linearizable).to_json()
    nemesis_ops: list[Op] = []  # few: for the faults' outcomes, from the same pass
    stats = compute_stats(_nemesis_into(stream_history(history), nemesis_ops))
    results.stats = stats.to_json()
    any_ok = any(c.get("ok") for c in stats.ops.values())
    results.checkers["stats"] = {"valid": True if any_ok else "unknown"}
    if not any_ok:
        results.notes.append(NO_OK_NOTE)
    results.notes.extend(fault_notes(nemesis_ops, configured=bool(spec.nemesis.faults)))


def _nemesis_into(ops: Iterable[Op], nemesis_ops: list[Op]) -> Iterator[Op]:
    for op in ops:
        if op.process == NEMESIS:
            nemesis_ops.append(op)
        yield op


def recheck(run_dir: Path) -> dict[str, Any]:
    """Check the stored history again with today's checkers, and rewrite results.json:
    its verdicts, statistics and notes change; what the run recorded (times, system,
    cluster, spec) stays. `rechecked` says when."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    old = json.loads(path.read_text())
    spec = load_run_spec(run_dir)
    fresh = RunResults(spec.name, old.get("run_id", ""), spec, time.time(),
                       error=old.get("error"), interrupted=bool(old.get("interrupted")))
    history = run_dir / "history.jsonl"
    check_history(spec, history, fresh)
    new = dict(old)
    new["checkers"] = fresh.checkers
    new["stats"] = fresh.stats
    new["valid"] = fresh.verdict
    new["notes"] = [n for n in old.get("notes", [])
                    if n != NO_OK_NOTE and n not in fresh.notes] + fresh.notes
    new["files"] = existing_files(run_dir, old.get("files") or {})  # the report adds itself
    new["rechecked"] = _iso(time.time())
    write_json(path, new)
    return new
