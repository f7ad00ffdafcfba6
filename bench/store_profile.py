"""Where a request's time goes in our store: CPU per request and a sampled breakdown.

Starts a 3-member store cluster on 127.0.0.1, runs one workload of bench/store_bench.py
(the same load client) and meanwhile

- reads each member's CPU time (user and system, all threads) from /proc before and
  after, and prints it per acknowledged request;
- if py-spy is installed (``pip install py-spy``; it is no dependency of the project),
  samples the leader's Python stacks and prints the share of samples per part of the
  request path. Each sample is charged to the innermost frame that belongs to one of
  our modules (so a syscall counts for the module that made it); a sample with no such
  frame is the event loop's own.

    python bench/store_profile.py [--workload put-16] [--duration 8] [--rate 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_bench import WORKLOADS, run_async

from harness.local import LocalCluster

# (part of the request path, path fragment of the module): the first that matches wins.
PARTS: tuple[tuple[str, str], ...] = (
    ("WAL append + fsync (disk thread)", "store/storage/"),
    ("peer wire encode/decode", "store/wire.py"),
    ("peer transport (send/receive)", "store/peer.py"),
    ("raft core (step, ready, progress)", "store/raft/"),
    ("v2 command encode/decode", "store/v2/command.py"),
    ("v2 JSON answer encoding", "store/v2/gojson.py"),
    ("apply to the v2 store", "store/v2/"),
    ("HTTP answer bytes", "store/http/responses.py"),
    ("keys handler (form, validate)", "store/http/keys.py"),
    ("keys handler (form, validate)", "store/http/form.py"),
    ("HTTP connection + parse", "store/http/server.py"),
    ("node: propose/Ready/apply loop", "store/node.py"),
)
LOOP = "event loop (uvloop, callbacks, no frame of ours)"


@dataclass(frozen=True)
class Cpu:
    user: float
    system: float


def cpu_of(pid: int) -> Cpu:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return Cpu(int(fields[11]) / tick, int(fields[12]) / tick)


def part_of(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for part, fragment in PARTS:
            if fragment in frame:
                return part
    return LOOP


def breakdown(raw: Path) -> Counter[str]:
    shares: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            shares[part_of(stack)] += int(count)
    return shares


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [w.name for w in WORKLOADS]
    parser.add_argument("--workload", default="put-16", choices=names)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--system", choices=("store", "etcd"), default="store",
                        help="etcd: CPU per request only (py-spy samples Python)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--sample", choices=("target", "follower"), default="target",
                        help="sample the member the load goes to, or a follower that takes none")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args(argv)
    workload = next(w for w in WORKLOADS if w.name == args.workload)
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if args.system == "etcd":
        spy = None
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp, LocalCluster(
        3, args.system, Path(tmp) / args.system
    ) as cluster:
        leader = cluster.wait_ready(60.0)
        follower = next(n for n in cluster.members if n != leader)
        target = leader if workload.on_leader else follower
        pids = {n: cluster.member(n).pid for n in cluster.members}
        sampled = target
        if args.sample == "follower":
            sampled = next(n for n in cluster.members if n not in (leader, target))
        raw = Path(tmp) / "stacks.txt"
        sampler = None
        if spy:
            sampler = subprocess.Popen(
                [spy, "record", "--pid", str(pids[sampled]), "--format", "raw", "--gil",
                 "--nonblocking", "--rate", str(args.rate), "--duration", str(int(args.duration)),
                 "--nolineno", "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        before = {n: cpu_of(p) for n, p in pids.items() if p}
        result = run_async(workload, cluster.member(target).client_port, args.duration)
        after = {n: cpu_of(p) for n, p in pids.items() if p}
        if sampler is not None:
            sampler.wait(timeout=60)
            if args.raw and raw.exists():
                shutil.copy(raw, args.raw)
        ops = result.ops or 1
        p50, p99 = result.percentile(50) * 1e3, result.percentile(99) * 1e3
        print(f"{args.system} {workload.title}: {result.throughput:.0f} ops/s, "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")  # fmt: skip
        print(f"{'member':10} | {'user us/op':>10} | {'sys us/op':>10} | {'CPU %':>6}")
        for n in cluster.members:
            if n not in before:
                continue
            user = after[n].user - before[n].user
            system = after[n].system - before[n].system
            role = "leader" if n == leader else "follower"
            print(f"{n + ' ' + role:10} | {user / ops * 1e6:10.0f} | {system / ops * 1e6:10.0f} | "
                  f"{100 * (user + system) / result.seconds:5.0f}%")  # fmt: skip
        if sampler is None:
            print("py-spy not installed: no breakdown")
            return 0
        if not raw.exists():
            print("py-spy wrote nothing (is ptrace allowed?)")
            return 1
        shares = breakdown(raw)
        total = sum(shares.values()) or 1
        print(f"\n{sampled}'s Python stacks, {total} samples (innermost module of ours):")
        for part, n in shares.most_common():
            print(f"  {100 * n / total:5.1f}%  {part}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
