"""From a stored history to verdicts: the workload's checkers and the statistics.

The one path from history.jsonl to results: `splitbrain run` calls `check_history` after
the cluster is down, `splitbrain report` calls `recheck` on a stored run. The report
renders what these wrote; it runs no checker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from checker.check import check_file
from checker.set_full import check_set_full
from checker.stats import compute as compute_stats
from harness.recorder import stream_history
from harness.results import RunResults, _iso, load_run_spec
from harness.spec import Spec
from harness.workload import make_workload

NO_OK_NOTE = "no client operation succeeded: the verdicts say little"


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
        )  # fmt: skip
        results.checkers["linearizable"] = checked.result.to_json()
    if "set-full" in workload.checkers:
        linearizable = bool(spec.workload.options.get("linearizable", True))
        results.checkers["set-full"] = check_set_full(stream_history(history),
                                                         linearizable).to_json()
    stats = compute_stats(stream_history(history))
    results.stats = stats.to_json()
    any_ok = any(c.get("ok") for c in stats.ops.values())
    results.checkers["stats"] = {"valid": True if any_ok else "unknown"}
    if not any_ok:
        results.notes.append(NO_OK_NOTE)


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
    new["notes"] = [n for n in old.get("notes", []) if n != NO_OK_NOTE] + fresh.notes
    new["files"] = {**old.get("files", {}), "report": "report.html"}
    new["rechecked"] = _iso(time.time())
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(new, indent=1, default=str) + "\n")
    tmp.replace(path)
    return new
