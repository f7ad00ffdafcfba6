"""Benchmark of faults: each family against our store and etcd, and etcd's stale reads.

1. For each fault family (kill, pause, partition, loss), our store and etcd 3.4, one
   run each (Docker, 5 nodes, 10 clients on a register, quorum reads, the interval
   schedule): ok operations per second over the whole run and while a fault is in
   force, availability (ok / completed) overall and during faults, and the
   unavailability window after each fault (median and max of the time from the fault
   until the first operation invoked after it succeeded).
2. specs/etcd-stale-reads.yaml run N times: in how many runs the checker found the
   anomaly, and the time from the start to the first non-linearizable read (median).
   specs/etcd-quorum-reads.yaml once beside it: valid expected.

    python bench/nemesis_bench.py [--time-limit 30] [--runs 10] [--systems store,etcd]
                                  [--faults kill,pause,partition,loss] [--skip-families]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.progress import Progress  # noqa: E402
from harness.runner import run  # noqa: E402
from harness.spec import load, override, parse  # noqa: E402


def family_spec(system: str, fault: str, time_limit: float, results: Path) -> Any:
    return parse({
        "name": f"bench-{system}-{fault}", "system": system, "nodes": 5, "concurrency": 10,
        "time_limit": time_limit, "seed": 1, "results": str(results),
        "workload": {"name": "register", "reads": "quorum"},
        "nemesis": {"faults": [fault], "schedule": {"fault": 5, "heal": 5}},
    })  # fmt: skip


def during_faults(run_dir: Path) -> tuple[float, float | None]:
    """ok ops/s and availability over the time faults were in force."""
    ops = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    results = json.loads((run_dir / "results.json").read_text())
    windows = [(f["start_s"], f["end_s"]) for f in results["stats"]["faults"] if f["end_s"]]
    inside = lambda t: any(a <= t <= b for a, b in windows)  # noqa: E731
    seconds = sum(b - a for a, b in windows)
    done = [op for op in ops if op["process"] != "nemesis" and op["type"] != "invoke"
            and inside(op["time"] / 1e9)]  # fmt: skip
    ok = sum(1 for op in done if op["type"] == "ok")
    return (ok / seconds if seconds else 0.0), (ok / len(done) if done else None)


def first_anomaly_s(run_dir: Path) -> float | None:
    results = json.loads((run_dir / "results.json").read_text())
    checked = results["checkers"].get("linearizable", {})
    if checked.get("valid") is not False:
        return None
    times = {}
    for line in (run_dir / "history.jsonl").read_text().splitlines():
        op = json.loads(line)
        times[op["index"]] = op["time"] / 1e9
    found = []
    for key in checked.get("keys", []):
        op = (key.get("counterexample") or {}).get("op") or {}
        index = op.get("complete_index") or op.get("invoke_index")
        if index in times:
            found.append(times[index])
    return min(found) if found else None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--time-limit", type=float, default=30.0)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--systems", default="store,etcd")
    p.add_argument("--faults", default="kill,pause,partition,loss")
    p.add_argument("--skip-families", action="store_true")
    args = p.parse_args()
    quiet = Progress(quiet=True)
    with tempfile.TemporaryDirectory(prefix="splitbrain-nemesis-bench-") as tmp:
        root = Path(tmp)
        if not args.skip_families:
            print(f"== fault families: 5 nodes, 10 clients, register with quorum reads, "
                  f"{args.time_limit:g} s, fault 5 s / heal 5 s")  # fmt: skip
            print(
                "fault     | system | verdict |   ok/s | ok/s in fault | avail. | in fault | "
                "unavailable after a fault: median / max s"
            )
            for fault in args.faults.split(","):
                for system in args.systems.split(","):
                    outcome = run(family_spec(system, fault, args.time_limit, root), quiet)
                    stats = outcome.results.stats or {}
                    rate, avail = during_faults(outcome.directory)
                    gaps = [f["unavailable_s"] for f in stats.get("faults", [])
                            if f["unavailable_s"] is not None]  # fmt: skip
                    window = f"{statistics.median(gaps):.3f} / {max(gaps):.3f}" if gaps else "-"
                    verdict = outcome.results.verdict
                    overall = stats.get("availability") or 0
                    print(
                        f"{fault:9} | {system:6} | {verdict!s:7} | "
                        f"{stats.get('ok_per_s', 0):6.0f} | {rate:13.0f} | "
                        f"{overall:6.3f} | {avail or 0:8.3f} | {window}"
                    )
        print(f"\n== etcd's stale reads: specs/etcd-stale-reads.yaml, seeds 1..{args.runs}")
        stale = load(ROOT / "specs" / "etcd-stale-reads.yaml")
        found: list[float | None] = []
        for seed in range(1, args.runs + 1):
            outcome = run(override(stale, seed=seed, results=str(root)), quiet)
            first = first_anomaly_s(outcome.directory)
            found.append(first if outcome.results.verdict is False else None)
            shown = "not found" if found[-1] is None else f"first stale read at {first:.1f} s"
            print(f"  seed {seed}: {outcome.results.verdict!s:7} {shown}")
        hits = [t for t in found if t is not None]
        median = f"{statistics.median(hits):.1f} s" if hits else "-"
        print(f"found in {len(hits)} of {len(found)} runs; time to the first stale read: "
              f"median {median}")  # fmt: skip
        quorum = run(override(load(ROOT / "specs" / "etcd-quorum-reads.yaml"), seed=1,
                              results=str(root)), quiet)  # fmt: skip
        print(f"specs/etcd-quorum-reads.yaml (seed 1): {quorum.results.verdict}")


if __name__ == "__main__":
    main()
