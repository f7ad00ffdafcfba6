"""Benchmark of report.html on a large history.

A 100,000-operation history (by default) of the `etcd` model on 200 keys from 10
processes, about 1 % indeterminate, drawn by checker/simulate.py with one impossible
read injected (so one key has a counterexample), and a leader kill with its restart
every 10 s, recorded as the harness records nemesis operations. It is checked as
`splitbrain run` checks a register run, then its report is built. Printed:

- the time to build report.html (reading the history, charts, template) and its size
  (target under 10 MB);
- the time until headless Chromium has drawn every chart (target under 3 s), as the
  page measured it (performance.now() at the end of the last chart's first frame) and as
  seen from Selenium, with any console errors; and a screenshot.

    python bench/report_bench.py [--ops 100000] [--seed 7] [--out DIR] [--no-browser]
                                 [--loads 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from checker.formats import write_jsonl
from checker.history import NEMESIS, Op
from checker.simulate import Workload, inject_impossible, simulate
from harness.check import check_history
from harness.report import build_report
from harness.report.browser import chromium, missing, open_report
from harness.results import RunResults, write_spec
from harness.spec import parse


def history(ops: int, seed: int) -> list[Op]:
    client = inject_impossible(simulate(seed, Workload(
        kind="etcd", ops=ops, processes=10, keys=200, values=50, p_info=0.01,
    )), seed)
    end = max(o.time or 0 for o in client)
    nemesis: list[Op] = []
    for n, start in enumerate(range(10 * 10**9, end, 10 * 10**9)):
        node = f"n{n % 3 + 1}"
        nemesis += [
            Op(0, NEMESIS, "info", "kill", "leader", time=start),
            Op(0, NEMESIS, "info", "kill", {"target": "leader", "nodes": [node],
                                             "leader": node}, time=start + 50_000_000),
            Op(0, NEMESIS, "info", "restart", None, time=start + 5 * 10**9),
            Op(0, NEMESIS, "info", "restart", {"nodes": [node]}, time=start + 5 * 10**9 + 10**8),
        ]
    merged = sorted(client + nemesis, key=lambda o: (o.time or 0))
    return [dataclasses.replace(o, index=i) for i, o in enumerate(merged)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100_000, help="client operations")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="keep the run folder here")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--loads", type=int, default=3, help="times to load the report")
    args = parser.parse_args()
    run_dir = args.out or Path(tempfile.mkdtemp(prefix="report-bench-"))
    (run_dir / "nodes").mkdir(parents=True, exist_ok=True)
    print(f"report benchmark: {args.ops} client operations, seed {args.seed}, in {run_dir}")

    started = time.monotonic()
    ops = history(args.ops, args.seed)
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    spec = parse({"name": "report-bench", "system": "store", "backend": "local", "nodes": 3,
                  "concurrency": 10, "time_limit": 60, "seed": args.seed,
                  "workload": {"name": "register"}, "nemesis": {"faults": ["kill"]}})
    results = RunResults(spec.name, "bench", spec, time.time() - 60,
                         system={"name": "store", "version": "simulated"})
    results.files = {"spec": "spec.yaml", "history": "history.jsonl",
                     "results": "results.json", "report": "report.html"}
    write_spec(run_dir / "spec.yaml", spec)
    check_history(spec, run_dir / "history.jsonl", results)
    results.ended = time.time()
    results.write(run_dir / "results.json")
    checked = results.checkers["linearizable"]
    print(f"  history: {len(ops)} lines ({sum(1 for o in ops if o.type == 'invoke')} client "
          f"operations), written and checked in {time.monotonic() - started:.1f} s: "
          f"{ {True: 'valid', False: 'invalid'}.get(checked['valid'], 'unknown') }, invalid keys "
          f"{checked['invalid_keys']}")

    started = time.monotonic()
    report = build_report(run_dir)
    built = time.monotonic() - started
    size = report.stat().st_size
    print(f"  build report.html: {built:.2f} s (reading the history included)")
    print(f"  report.html: {size / 1e6:.2f} MB (target < 10 MB)")

    if args.no_browser:
        return 0
    why = missing()
    if why is not None:
        print(f"  render: skipped: {why}")
        return 0
    print(f"  load average of this machine: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores (render times grow with it)")
    with chromium() as driver:
        loads = []
        for n in range(args.loads):
            r = open_report(driver, report, timeout=120)
            loads.append(r)
            errors = [m["message"][:200] for m in r.console if m.get("level") == "SEVERE"]
            timings = driver.execute_script("return window.splitbrainTimings")
            print(f"  render in headless Chromium, load {n + 1}: {r.page_ms} ms in the page "
                  f"(scripts parsed at {timings.get('parsed')} ms, overview chart "
                  f"{timings.get('overview')} ms), {r.seconds:.2f} s seen from Selenium; "
                  f"state {r.state!r}; console errors: "
                  f"{json.dumps(errors) if errors else 'none'}")
        driver.save_screenshot(str(run_dir / "report.png"))
    best = min((r.page_ms for r in loads if r.page_ms is not None), default=None)
    print(f"  render: best of {args.loads}: {best} ms (target < 3000 ms)")
    print(f"  screenshot: {run_dir / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
