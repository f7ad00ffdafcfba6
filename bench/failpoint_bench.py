"""What failpoints cost when off: the Raft core with failpoints compiled in but off,
against the same code before failpoints were planted, side by side in this run.

The work is the Raft simulator's (store/raft/simulator.py: the core and the Ready plan
the store runs, every message and proposal through the failpoint checks), the same
seeds in both trees, so both do exactly the same events; each trial runs both trees
in child processes, alternating, and the table gives the CPU seconds (min and median)
and the change. Then the cost of one check, per call, in this process.

    .venv/bin/python bench/failpoint_bench.py [--trials 5] [--seeds 30] [--baseline DIR]

Without `--baseline`, the baseline tree is `git archive` of the commit before
store/failpoints.py was added, in a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
from store.raft.simulator import simulate
t = time.process_time()
for seed in range({seeds}):
    simulate(seed, nodes=3, faults="default", check_seconds=5)
print(time.process_time() - t)
"""


def baseline_tree(into: Path) -> Path:
    added = subprocess.run(
        ["git", "log", "--format=%H", "--diff-filter=A", "--", "store/failpoints.py"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not added:
        raise SystemExit("no commit adds store/failpoints.py: give --baseline DIR")
    rev = f"{added[-1]}^"
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    print(f"baseline: {rev} ({into})")
    return into


def cpu_seconds(tree: Path, seeds: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD.format(seeds=seeds)], cwd=tree,
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(tree)})
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=30, help="simulator seeds per trial")
    ap.add_argument("--baseline", type=Path, help="a source tree without failpoints")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="failpoint-bench-") as tmp:
        base = args.baseline or baseline_tree(Path(tmp))
        times: dict[str, list[float]] = {"before failpoints": [], "failpoints off": []}
        for _ in range(args.trials):
            times["before failpoints"].append(cpu_seconds(base, args.seeds))
            times["failpoints off"].append(cpu_seconds(ROOT, args.seeds))
    print(f"\nRaft simulator, {args.seeds} seeds x {args.trials} trials (CPU s, alternating)")
    print("| tree | min | median |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} |")
    b, n = min(times["before failpoints"]), min(times["failpoints off"])
    print(f"change (min against min): {100 * (n - b) / b:+.2f} %")

    sys.path.insert(0, str(ROOT))
    from store import failpoints as fp

    fp.enable([])
    number = 2_000_000
    check = timeit.timeit('fp.ACTIVE is not None and "vote-no-log-check" in fp.ACTIVE',
                          globals={"fp": fp}, number=number)
    empty = timeit.timeit("pass", number=number)
    print(f"one failpoint check, off: {1e9 * (check - empty) / number:.1f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
