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

`--instructions` measures instead by instructions counted under valgrind's callgrind
(Ir), which the machine's load does not change (bench/callgrind.py), each child with
PYTHONHASHSEED=0:

1. One store member (a 1-member cluster) from each tree under callgrind, tree after
   tree (A B, B A, ...), --runs each: --warmup PUTs, counters zeroed, --puts sequential
   PUTs from one client in this process (same keys and values every run), counters
   dumped; the member's count over the PUTs, per run and per tree, and the change. The
   member writes its WAL on the loop thread (store/node.py picks loop or disk thread
   by how long recent saves took, which callgrind's slowness would flip from run to
   run). Timers (Raft ticks) add instructions with wall time: the member is counted
   idle for --idle s after, and that rate over a run's wall time bounds their share
   from above (idle, each timer wakes the loop alone); the slope of count on wall time
   fitted over the runs is what they add under load, and the change less it is printed.
2. The Raft simulator (same seeds, the history check skipped: the checker is not the
   store, and its time budget would make the count depend on speed) under callgrind,
   less the start-up (a run of no seed): deterministic, the runs of one tree agree to
   the instruction.
3. A bound: the failpoint checks each member evaluates per PUT (counted natively, in a
   1- and a 3-member store, by a failpoint set that counts lookups), times the Ir of
   one check (a loop of checks against an empty loop, under callgrind), over the Ir of
   a PUT from 1.

    .venv/bin/python bench/failpoint_bench.py --instructions [--runs 4] [--puts 2000]
        [--warmup 200] [--idle 10] [--sim-runs 2] [--sim-seeds 5] [--commit HEAD]

Measured 2026-12-06 04:23-04:29 UTC, commit 89b1952 (the store as on main d04e731), load
average 7-8, 343 s: the member 1,011,926,116 Ir (checks off) against 1,011,712,149
(checks removed), +0.02 %, spread within a tree 0.31 % and 0.39 %, 506k Ir per PUT
(timers: at most 1.42 % of a run by the idle rate, 356k Ir/s fitted; less that,
+0.03 %); the simulator (5 seeds) 1,474,438,308 against 1,473,559,006, +0.06 %; bound:
5 checks per PUT (the leader of 3; a lone member 3, a follower 2) x 89 Ir = 445 Ir
against 506k Ir per PUT, 0.09 %.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import callgrind  # noqa: E402
import store_bench as sb  # noqa: E402

from harness.blocking_http import KeepAliveClient  # noqa: E402
from harness.local import LocalCluster, Member  # noqa: E402

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


# -- instruction counts (--instructions) -------------------------------------------------

KEYS = 100  # the PUTs cycle over as many keys, so the store stays small (as store_bench)
COUNTS_ENV = "FAILPOINT_BENCH_COUNTS"  # the folder a counting member writes into (below)

# A member whose failpoint set is an empty set that counts the checks that look into it:
# `"name" in fp.ACTIVE` runs exactly when the check, with ACTIVE None, would test
# `is not None`. SIGUSR1 writes the counts so far to COUNTS_ENV/PID.json.
COUNTING_MEMBER = """
import collections, json, os, runpy, signal
from store import failpoints as fp
counts = collections.Counter()
class Counting(frozenset):
    def __contains__(self, name):
        counts[name] += 1
        return False
def enable(names):
    fp.ACTIVE = Counting()
fp.enable = enable
fp.ACTIVE = Counting()
dumps = 0
def write(*_):
    global dumps
    dumps += 1
    path = os.path.join(os.environ["FAILPOINT_BENCH_COUNTS"], f"{os.getpid()}.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"dump": dumps, "counts": dict(counts)}, f)
    os.replace(path + ".tmp", path)
signal.signal(signal.SIGUSR1, write)
runpy.run_module("store", run_name="__main__", alter_sys=True)
"""

# A member that always writes its WAL on the loop thread, as a lone member with one
# client does on a fast disk (store/node.py, INLINE_SAVE_S): the choice follows how long
# recent saves took, and under callgrind they take ~50 times longer, so that it would
# switch between the loop and the disk thread from run to run.
INLINE_MEMBER = """
import runpy
import store.node
store.node.INLINE_SAVE_S = float("inf")
runpy.run_module("store", run_name="__main__", alter_sys=True)
"""

# The simulator's cores and Ready plan, without the history check: the checker is not
# the store, and its time budget would make the count depend on the machine's speed.
SIM_CHILD = """
from store.raft.simulator import Simulation, simulate
Simulation._check_history = lambda self: None
for seed in range({seeds}):
    simulate(seed, nodes=3, faults="default")
"""

ONE_CHECK = """
from store import failpoints as fp
def checks(n):
    for _ in range(n):
        if fp.ACTIVE is not None and "vote-no-log-check" in fp.ACTIVE:
            pass
def empty(n):
    for _ in range(n):
        pass
{which}({n})
"""


class WrappedCluster(LocalCluster):
    """A LocalCluster whose members' command lines pass through `wrap` first."""

    def __init__(self, *args: Any, wrap: Callable[[list[str]], list[str]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wrap = wrap

    def argv(self, member: Member) -> list[str]:
        return self.wrap(super().argv(member))


def put(client: KeepAliveClient, first: int, count: int) -> None:
    """PUTs number first..first+count-1, one at a time, over the same KEYS keys."""
    for i in range(first, first + count):
        answer = client.put(f"bench/c0-{i % KEYS}", f"v{i}")
        if answer.status not in (200, 201):
            raise RuntimeError(f"PUT {i}: {answer.status} {answer.body[:200]!r}")


def tree_env(tree: Path) -> dict[str, str]:
    # one hash seed: set and dict layouts, so the instructions, the same in every run
    return {"PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}


@dataclass
class MemberCount:
    """One member under callgrind: PUTs, then idle."""

    tree: str
    load_ir: int  # from zeroing before the PUTs to the dump after them
    load_s: float
    idle_ir: int  # the same member idle afterwards: its timers (Raft ticks) alone
    idle_s: float

    @property
    def idle_rate(self) -> float:
        return self.idle_ir / self.idle_s


def timer_slope(runs: list[MemberCount]) -> float | None:
    """Ir per wall second that the load's count grows by: the slope of load Ir on load
    seconds, fitted within each tree with one slope for all (None: seconds all equal).

    Idle, every timer wakes the loop alone; under load it shares a wake-up, so the idle
    rate overstates what the timers add to the load's count."""
    sxy = sxx = 0.0
    for kind in {m.tree for m in runs}:
        mine = [m for m in runs if m.tree == kind]
        mean_s = statistics.fmean(m.load_s for m in mine)
        mean_ir = statistics.fmean(m.load_ir for m in mine)
        sxy += sum((m.load_s - mean_s) * (m.load_ir - mean_ir) for m in mine)
        sxx += sum((m.load_s - mean_s) ** 2 for m in mine)
    return sxy / sxx if sxx > 0 else None


def member_count(tree: Path, kind: str, root: Path, args: argparse.Namespace) -> MemberCount:
    """A 1-member store from `tree` under callgrind: warm-up, then --puts PUTs counted,
    then --idle seconds idle counted."""
    root.mkdir(parents=True)
    out = root / "callgrind.out"

    def inline(argv: list[str]) -> list[str]:
        assert argv[1:3] == ["-m", "store"], argv
        return callgrind.wrap([argv[0], "-c", INLINE_MEMBER, *argv[3:]], out)

    with WrappedCluster(1, "store", root, env=tree_env(tree), wrap=inline) as cluster:
        cluster.wait_ready(300.0)
        pid = cluster.member("n1").pid
        assert pid is not None
        with cluster.client("n1", timeout=120.0) as client:
            put(client, 0, args.warmup)
            callgrind.zero(pid)
            start = time.monotonic()
            put(client, args.warmup, args.puts)
            load_s = time.monotonic() - start
            load_ir = callgrind.dump(pid, out, 1)
        callgrind.zero(pid)
        start = time.monotonic()
        time.sleep(args.idle)  # the measure itself: the member idle for this long
        idle_s = time.monotonic() - start
        idle_ir = callgrind.dump(pid, out, 2)
        cluster.kill("n1", signal.SIGTERM, 120.0)
    return MemberCount(kind, load_ir, load_s, idle_ir, idle_s)


def checks_per_put(tree: Path, root: Path, size: int, puts: int) -> dict[str, dict[str, float]]:
    """Failpoint checks evaluated per PUT by each member of a `size`-member store from
    `tree` (run natively, each check counted): {"leader"|"follower n": {name: per PUT}}."""
    counts_dir = root / "counts"
    counts_dir.mkdir(parents=True)

    def counting(argv: list[str]) -> list[str]:
        assert argv[1:3] == ["-m", "store"], argv
        return [argv[0], "-c", COUNTING_MEMBER, *argv[3:]]

    env = {**tree_env(tree), COUNTS_ENV: str(counts_dir)}
    with WrappedCluster(size, "store", root, env=env, wrap=counting) as cluster:
        leader = cluster.wait_ready(60.0)
        pids = {name: cluster.member(name).pid for name in cluster.members}
        with cluster.client(leader, timeout=30.0) as client:
            put(client, 0, KEYS)  # warm-up: every key exists
            before = {name: _counts(pid, counts_dir, 1) for name, pid in pids.items()}
            put(client, KEYS, puts)
            after = {name: _counts(pid, counts_dir, 2) for name, pid in pids.items()}
    found: dict[str, dict[str, float]] = {}
    followers = 0
    for name in pids:
        if name == leader:
            role = "leader"
        else:
            followers += 1
            role = f"follower {followers}"
        names = sorted(set(after[name]) | set(before[name]))
        found[role] = {n: (after[name].get(n, 0) - before[name].get(n, 0)) / puts
                       for n in names}
    return found


def _counts(pid: int | None, folder: Path, dump: int, timeout: float = 30.0) -> dict[str, int]:
    assert pid is not None
    os.kill(pid, signal.SIGUSR1)
    path = folder / f"{pid}.json"
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            found = json.loads(path.read_text())
            if found["dump"] == dump:
                return found["counts"]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"member {pid} wrote no check counts after {timeout:.0f} s")
        time.sleep(0.02)


def python_count(tree: Path, code: str, out: Path) -> int:
    return callgrind.run([sys.executable, "-c", code], out, tree, tree_env(tree))


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{100 * (max(values) - min(values)) / mean:.2f} %"


def instructions(trees: dict[str, Path], args: argparse.Namespace, root: Path) -> None:
    callgrind.require()
    started = time.monotonic()
    for tree in trees.values():  # else the first run of a tree counts compiling it too
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True,
                       stdout=subprocess.DEVNULL)
    print(f"\nInstructions (callgrind Ir), PYTHONHASHSEED=0; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)

    # 1. one member, PUTs
    runs: list[MemberCount] = []
    for r in range(args.runs):
        for kind in (list(trees) if r % 2 == 0 else list(reversed(trees))):
            got = member_count(trees[kind], kind, root / f"member-{r}-{kind.replace(' ', '-')}",
                               args)
            runs.append(got)
            print(f"  run {r + 1} {kind}: load {got.load_ir:,} Ir in {got.load_s:.1f} s "
                  f"({got.load_ir / args.puts:,.0f} Ir/PUT); idle {got.idle_rate:,.0f} Ir/s",
                  flush=True)
    print(f"\nOne store member under callgrind, {args.puts} sequential PUTs (after "
          f"{args.warmup} warm-up), {args.runs} runs per tree, alternating; the member's "
          "instructions from before the first PUT to after the last")
    print("| tree | Ir per run | mean | spread | Ir/PUT | wall s per run | idle Ir/s |\n"
          "|---|---|---|---|---|---|---|")
    mean: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for kind in trees:
        mine = [m for m in runs if m.tree == kind]
        mean[kind] = statistics.fmean(m.load_ir for m in mine)
        seconds[kind] = statistics.fmean(m.load_s for m in mine)
        print(f"| {kind} | {' '.join(f'{m.load_ir:,}' for m in mine)} | {mean[kind]:,.0f} | "
              f"{spread([float(m.load_ir) for m in mine])} | {mean[kind] / args.puts:,.0f} | "
              f"{' '.join(f'{m.load_s:.1f}' for m in mine)} | "
              f"{statistics.fmean(m.idle_rate for m in runs if m.tree == kind):,.0f} |")
    print(f"change, {WITH} against {WITHOUT}: {change(mean[WITH], mean[WITHOUT])}")
    idle = statistics.fmean(m.idle_rate for m in runs)
    most = max(m.idle_rate * m.load_s / m.load_ir for m in runs)
    print(f"timers: idle, the member counts {idle:,.0f} Ir/s; that rate over a run's wall "
          f"time is at most {100 * most:.2f} % of its count (an upper bound: under load the "
          "timers share the loop's wake-ups)")
    slope = timer_slope(runs)
    if slope is not None:
        adjusted = {k: mean[k] - slope * seconds[k] for k in trees}
        print(f"  fitted on the runs (load Ir against wall s, one slope): {slope:,.0f} Ir/s; "
              f"less that, the change is {change(adjusted[WITH], adjusted[WITHOUT])}")
    print(flush=True)
    ir_per_put = mean[WITH] / args.puts

    # 2. the simulator
    if args.sim_runs > 0:
        base = {kind: python_count(tree, SIM_CHILD.format(seeds=0),
                                   root / f"sim-0-{kind.replace(' ', '-')}.out")
                for kind, tree in trees.items()}
        sims: dict[str, list[int]] = {kind: [] for kind in trees}
        for r in range(args.sim_runs):
            for kind in (list(trees) if r % 2 == 0 else list(reversed(trees))):
                sims[kind].append(python_count(
                    trees[kind], SIM_CHILD.format(seeds=args.sim_seeds),
                    root / f"sim-{r}-{kind.replace(' ', '-')}.out"))
        print(f"\nRaft simulator under callgrind, seeds 0..{args.sim_seeds - 1} (history "
              f"check skipped), {args.sim_runs} runs per tree; start-up (seeds none) "
              "subtracted")
        print("| tree | Ir per run | start-up Ir | mean simulation Ir |\n|---|---|---|---|")
        sim_mean = {}
        for kind in trees:
            sim_mean[kind] = statistics.fmean(sims[kind]) - base[kind]
            print(f"| {kind} | {' '.join(f'{x:,}' for x in sims[kind])} | {base[kind]:,} | "
                  f"{sim_mean[kind]:,.0f} |")
        print(f"change: {change(sim_mean[WITH], sim_mean[WITHOUT])}", flush=True)

    # 3. the bound: checks per PUT x instructions per check against instructions per PUT
    n = 1_000_000
    tree = trees[WITH]
    per_check = (python_count(tree, ONE_CHECK.format(which="checks", n=n), root / "c.out")
                 - python_count(tree, ONE_CHECK.format(which="empty", n=n), root / "e.out")) / n
    single = checks_per_put(tree, root / "count-1", 1, args.puts)
    triple = checks_per_put(tree, root / "count-3", 3, args.puts)
    print(f"\nOne failpoint check, off: {per_check:.1f} Ir (a loop of {n:,} against an empty "
          "loop, under callgrind)")
    print(f"Checks evaluated per PUT ({args.puts} sequential PUTs, counted natively):")
    for size, found in ((1, single), (3, triple)):
        for role, per in found.items():
            total = sum(per.values())
            detail = ", ".join(f"{k} {v:.3g}" for k, v in per.items() if v) or "none"
            print(f"  {size} member(s), {role}: {total:.2f} ({detail})")
    worst = max(sum(per.values()) for found in (single, triple) for per in found.values())
    # the most checks any member makes per PUT, over the Ir of a lone member's PUT (a
    # member of 3 does more per PUT than a lone one): this overstates the share
    print(f"bound: {worst:.2f} checks x {per_check:.1f} Ir = {worst * per_check:.0f} Ir per "
          f"PUT against {ir_per_put:,.0f} Ir per PUT ({WITH}, 1 member, timers in): "
          f"{100 * worst * per_check / ir_per_put:.4f} %")
    print(f"(instruction measures took {time.monotonic() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--rounds", type=int, default=6, help="PUT rounds (0: skip)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per workload")
    ap.add_argument("--workloads", default="put-seq,put-16,put-64")
    ap.add_argument("--trials", type=int, default=5, help="simulator trials (0: skip)")
    ap.add_argument("--seeds", type=int, default=30, help="simulator seeds per trial")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under callgrind instead of timing (the "
                         "options below; --rounds and --trials are not used)")
    ap.add_argument("--puts", type=int, default=2000, help="PUTs counted per member run")
    ap.add_argument("--warmup", type=int, default=200, help="PUTs before counting")
    ap.add_argument("--runs", type=int, default=4, help="member runs per tree")
    ap.add_argument("--idle", type=float, default=10.0,
                    help="seconds the member is counted idle, for its timers' share")
    ap.add_argument("--sim-runs", type=int, default=2, help="simulator runs per tree (0: skip)")
    ap.add_argument("--sim-seeds", type=int, default=5, help="simulator seeds per run")
    args = ap.parse_args(argv)
    args.workloads = set(args.workloads.split(","))
    with tempfile.TemporaryDirectory(prefix="failpoint-bench-") as tmp:
        a = archive(args.commit, Path(tmp) / "with")
        b = archive(args.commit, Path(tmp) / "without")
        removed = strip_checks(b)
        trees = {WITH: a, WITHOUT: b}
        print(f"{args.commit}: {removed} failpoint checks removed in {trees[WITHOUT]}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.instructions:
            instructions(trees, args, Path(tmp))
            return 0
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
