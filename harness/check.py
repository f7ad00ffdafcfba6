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

from checker.history import NEMESIS, Op
from checker.stats import compute as compute_stats
from harness.checkers import CheckJob, compose, run_checkers
from harness.recorder import stream_history
from harness.results import RunResults, _iso, existing_files, load_run_spec, write_json
from harness.spec import Spec
from harness.workload import make_workload
from nemesis.outcomes import fault_notes

NO_OK_NOTE = "no client operation succeeded: the verdicts say little"


def check_history(spec: Spec, history: Path, results: RunResults) -> None:
    """The statistics, then the workload's checkers composed by name (harness/checkers.py),
    into results (also `splitbrain report`). Each reads history.jsonl streaming: memory
    bounded by what one key (the linearizability check), the transactions (the txn
    check) or the faults and latency buckets (the statistics) need."""
    workload = make_workload(spec.workload.name, spec.concurrency, spec.workload.options)
    nemesis_ops: list[Op] = []  # few: for the faults' outcomes, from the same pass
    stats = compute_stats(_nemesis_into(stream_history(history), nemesis_ops))
    results.stats = stats.to_json()
    job = CheckJob(spec, workload, history, stats)
    results.checkers.update(run_checkers(compose(workload.checkers), job))
    if not any(c.get("ok") for c in stats.ops.values()):
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
    new["valid"] = fresh.verdict.to_json()
    new["notes"] = [n for n in old.get("notes", [])
                    if n != NO_OK_NOTE and n not in fresh.notes] + fresh.notes
    new["files"] = existing_files(run_dir, old.get("files") or {})  # the report adds itself
    new["rechecked"] = _iso(time.time())
    write_json(path, new)
    return new
