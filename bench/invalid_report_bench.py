"""Benchmark of the report of a run with many invalid keys (issue 19).

A history shaped like `specs/etcd-stale-reads.yaml`'s (the register workload: keys one
after another, 10 clients on each, ~200 operations per key, unique values, many
timeouts), drawn by checker/simulate.py `keyed_register_history`: 100,000 operations
over 500 keys by default, most keys spoiled by a stale read that only the zone procedure
decides. It is written as a run folder (history.jsonl, spec.yaml, results.json as
`splitbrain run` writes it, through harness/check.py). Printed:

- the check's time, the invalid keys and how they were decided;
- results.json's size (target under 2 MB), and what it would be with every
  counterexample kept whole;
- the time to build report.html (target under 10 s) and its size;
- the wall time of `splitbrain report DIR` (the whole command: the check again, then
  the report; target under 15 s) and of `splitbrain report --no-check DIR`;
- with `--browser`, the time headless Chromium takes to draw the page, its console
  errors, and what the page leads with.

    python bench/invalid_report_bench.py [--ops 100000] [--keys 500] [--seed 7] [--out DIR]
                                         [--browser]
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from checker.check import check_file
from checker.formats import write_jsonl
from checker.simulate import keyed_register_history
from harness.check import check_history
from harness.report import build_report
from harness.results import RunResults, write_spec
from harness.spec import parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100_000, help="client operations")
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="keep the run folder here")
    parser.add_argument("--browser", action="store_true", help="also draw it in Chromium")
    args = parser.parse_args()
    run_dir = args.out or Path(tempfile.mkdtemp(prefix="invalid-report-bench-"))
    (run_dir / "nodes").mkdir(parents=True, exist_ok=True)
    print(f"invalid report benchmark: {args.ops} operations over {args.keys} keys, "
          f"seed {args.seed}, in {run_dir}")

    started = time.monotonic()
    ops = keyed_register_history(args.seed, args.keys, args.ops // args.keys)
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    print(f"  history: {len(ops)} lines, made in {time.monotonic() - started:.1f} s")
    spec = parse({"name": "invalid-report-bench", "system": "etcd", "backend": "local",
                  "nodes": 5, "concurrency": 10, "time_limit": 30, "seed": args.seed,
                  "workload": {"name": "register", "ops_per_key": args.ops // args.keys}})
    results = RunResults(spec.name, "bench", spec, time.time() - 30,
                         system={"name": "etcd", "version": "simulated"})
    results.files = {"spec": "spec.yaml", "history": "history.jsonl",
                     "results": "results.json", "node_logs": "nodes/"}
    write_spec(run_dir / "spec.yaml", spec)
    started = time.monotonic()
    check_history(spec, run_dir / "history.jsonl", results)
    results.ended = time.time()
    results.write(run_dir / "results.json")
    checked = results.checkers["linearizable"]
    methods = collections.Counter(k["method"] for k in checked["keys"])
    print(f"  check: {time.monotonic() - started:.1f} s; {len(checked['invalid_keys'])} of "
          f"{checked['key_count']} keys invalid, decided by {dict(methods)}")
    size = (run_dir / "results.json").stat().st_size
    print(f"  results.json: {size / 1e6:.2f} MB (target < 2 MB), "
          f"{len(checked['keys']) - checked['counterexamples_omitted']} full counterexamples, "
          f"{checked['counterexamples_omitted']} summarised")
    whole = check_file(str(run_dir / "history.jsonl"), "kv", fmt="jsonl").result.to_json()
    print(f"  (with every counterexample whole: "
          f"{len(json.dumps(whole, indent=1, default=str)) / 1e6:.2f} MB)")

    started = time.monotonic()
    report = build_report(run_dir, ops)
    print(f"  build report.html from the operations in memory: "
          f"{time.monotonic() - started:.2f} s")
    started = time.monotonic()
    report = build_report(run_dir)
    print(f"  build report.html, reading the history: {time.monotonic() - started:.2f} s "
          f"(target < 10 s); {report.stat().st_size / 1e6:.2f} MB")

    for extra in ([], ["--no-check"]):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "harness.cli", "report", *extra,
                               str(run_dir)], capture_output=True, text=True)
        wall = time.monotonic() - started
        print(f"  splitbrain report {' '.join(extra)}{' ' if extra else ''}DIR: {wall:.1f} s "
              f"wall{' (target < 15 s)' if not extra else ''}, exit {done.returncode}")
        if done.returncode not in (0, 1):
            print(done.stdout + done.stderr)
    size = (run_dir / "results.json").stat().st_size
    print(f"  results.json after splitbrain report: {size / 1e6:.2f} MB")
    if args.browser:
        draw(report)
    return 0


def draw(report: Path) -> None:
    from selenium.webdriver.common.by import By

    from harness.report.browser import chromium, missing, open_report

    why = missing()
    if why is not None:
        print(f"  draw: skipped: {why}")
        return
    with chromium() as driver:
        page = open_report(driver, report, timeout=180)
        errors = [m["message"][:200] for m in page.console if m.get("level") == "SEVERE"]
        first = driver.find_element(By.CSS_SELECTOR, "#first-violation").text.splitlines()[0]
        print(f"  draw in headless Chromium: {page.page_ms} ms in the page, "
              f"{page.seconds:.1f} s seen from Selenium, state {page.state!r}; console "
              f"errors: {json.dumps(errors) if errors else 'none'}")
        print(f"  the page leads with: {first}")


if __name__ == "__main__":
    sys.exit(main())
