"""What failpoints cost when off: one commit against the same commit with its failpoint
checks removed, side by side in this run.

Both trees are `git archive` of one commit (HEAD by default) in a temporary folder; in
the second, every check (`fp.ACTIVE is not None and "name" in fp.ACTIVE`, and its negated
form) is rewritten to the constant it is when every failpoint is off, so the two differ
by the checks alone. Two measures, alternating the trees (A B, then B A, ...):

1. PUT throughput of the store (bench/store_bench.py's workloads and load client), a
   3-member local cluster from each tree, both running at once and idle but for the one
   measured; per round and workload the ops/s of each and the change; then the sum
   over rounds (total operations over total time) and its change.
2. The Raft simulator's CPU time (store/raft/simulator.py: the core and Ready plan the
   store runs), the same seeds in both trees, min and median over trials.

Then the cost of one check, off, per call, in this process.

    .venv/bin/python bench/failpoint_bench.py [--rounds 6] [--duration 5]
        [--workloads put-seq,put-16,put-64] [--trials 5] [--seeds 30] [--commit HEAD]

The noise of a shared machine is far above 1 %: read the per-round spread, and run it on
a quiet machine (the load average is printed with each figure).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import store_bench as sb  # noqa: E402

from harness.local import LocalCluster  # noqa: E402

WITH, WITHOUT = "checks off", "checks removed"

# A failpoint check as the store spells it (store/failpoints.py), and what it is when off.
CHECKS = (
    (re.compile(r'fp\.ACTIVE is not None and "[a-z-]+" in fp\.ACTIVE'), "False"),
    (re.compile(r'fp\.ACTIVE is None or "[a-z-]+" not in fp\.ACTIVE'), "True"),
)

CHILD = """
import sys, time
from store.raft.simulator import simulate
t = time.process_time()
for seed in range({seeds}):
    simulate(seed, nodes=3, faults="default", check_seconds=5)
print(time.process_time() - t)
"""


def archive(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    data = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True,
                          check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=data, check=True)
    return into


def strip_checks(tree: Path) -> int:
    """Rewrite every failpoint check under tree/store to its constant; how many."""
    count = 0
    for path in sorted((tree / "store").rglob("*.py")):
        if path.name == "failpoints.py":
            continue
        text = path.read_text()
        for pattern, constant in CHECKS:
            text, n = pattern.subn(constant, text)
            count += n
        if "fp.ACTIVE" in text:
            raise SystemExit(f"{path}: a failpoint check this bench cannot rewrite; "
                             "teach CHECKS its form")
        path.write_text(text)
    return count


def cpu_seconds(tree: Path, seeds: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD.format(seeds=seeds)], cwd=tree,
                         capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(tree)})
    return float(out.stdout.strip().splitlines()[-1])


def change(new: float, base: float) -> str:
    return f"{100 * (new - base) / base:+.2f} %"


def put_throughput(trees: dict[str, Path], args: argparse.Namespace, root: Path) -> None:
    workloads = [w for w in sb.WORKLOADS if w.name in args.workloads]
    opts = argparse.Namespace(client="asyncio", duration=args.duration)
    per_round: dict[tuple[str, str], list[float]] = {}
    total: dict[str, sb.SystemRun] = {kind: sb.SystemRun(kind) for kind in trees}
    with contextlib.ExitStack() as stack:
        clusters: dict[str, LocalCluster] = {}
        for kind, tree in trees.items():
            cluster = stack.enter_context(
                LocalCluster(3, "store", root / kind.replace(" ", "-"),
                             env={"PYTHONPATH": str(tree)}))
            cluster.wait_ready(60.0)
            clusters[kind] = cluster
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for workload in workloads:
                for kind in order:
                    one = sb.SystemRun(kind)
                    sb.measure(one, clusters[kind], workload, opts)
                    got = one.results[workload.name]
                    per_round.setdefault((workload.name, kind), []).append(got.throughput)
                    _add(total[kind], workload.name, got)
    print(f"\nPUT throughput, ops/s, {args.rounds} rounds x {args.duration:.0f} s, "
          "trees alternating (A B, B A, ...)")
    print(f"| workload | {WITH} per round | {WITHOUT} per round | {WITH} all | "
          f"{WITHOUT} all | change |\n|---|---|---|---|---|---|")
    for workload in workloads:
        a = per_round[(workload.name, WITH)]
        b = per_round[(workload.name, WITHOUT)]
        ta = total[WITH].results[workload.name].throughput
        tb = total[WITHOUT].results[workload.name].throughput
        print(f"| {workload.name} | {' '.join(f'{x:.0f}' for x in a)} | "
              f"{' '.join(f'{x:.0f}' for x in b)} | {ta:.0f} | {tb:.0f} | {change(ta, tb)} |")


def _add(run: sb.SystemRun, name: str, result: sb.Result) -> None:
    """Sum a round's result into `run`, as store_bench does over rounds."""
    earlier = run.results.get(name)
    if earlier is not None:
        result = sb.Result(earlier.ops + result.ops, earlier.errors + result.errors,
                           earlier.seconds + result.seconds,
                           earlier.latencies + result.latencies,
                           earlier.client_cpu + result.client_cpu)
    run.results[name] = result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--rounds", type=int, default=6, help="PUT rounds (0: skip)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per workload")
    ap.add_argument("--workloads", default="put-seq,put-16,put-64")
    ap.add_argument("--trials", type=int, default=5, help="simulator trials (0: skip)")
    ap.add_argument("--seeds", type=int, default=30, help="simulator seeds per trial")
    args = ap.parse_args(argv)
    args.workloads = set(args.workloads.split(","))
    with tempfile.TemporaryDirectory(prefix="failpoint-bench-") as tmp:
        a = archive(args.commit, Path(tmp) / "with")
        b = archive(args.commit, Path(tmp) / "without")
        removed = strip_checks(b)
        trees = {WITH: a, WITHOUT: b}
        print(f"{args.commit}: {removed} failpoint checks removed in {trees[WITHOUT]}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.rounds > 0:
            put_throughput(trees, args, Path(tmp))
        if args.trials > 0:
            times: dict[str, list[float]] = {WITH: [], WITHOUT: []}
            for t in range(args.trials):
                for kind in (list(trees) if t % 2 == 0 else list(reversed(trees))):
                    times[kind].append(cpu_seconds(trees[kind], args.seeds))
            print(f"\nRaft simulator, {args.seeds} seeds x {args.trials} trials "
                  "(CPU s, alternating)")
            print("| tree | min | median |\n|---|---|---|")
            for name, values in times.items():
                print(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} |")
            print(f"change (min against min): {change(min(times[WITH]), min(times[WITHOUT]))}")

    from store import failpoints as fp

    fp.enable([])
    number = 2_000_000
    check = timeit.timeit('fp.ACTIVE is not None and "vote-no-log-check" in fp.ACTIVE',
                          globals={"fp": fp}, number=number)
    empty = timeit.timeit("pass", number=number)
    print(f"one failpoint check, off: {1e9 * (check - empty) / number:.1f} ns; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
