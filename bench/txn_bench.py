"""Benchmark of the transactional checker (Elle's analysis). It prints figures and
asserts nothing.

Histories from the simulated database (checker/txn/simulate.py): 10 processes, 1 to
4 micro-operations per transaction, half reads, 5 % failed and 10 % `info`
transactions, 4 keys in use at a time, each retired after 16 writes. For each
workload (list-append, rw-register) and size (1,000, 10,000, 100,000 transactions):

1. strict-serializable histories (valid);
2. the same with 1 % of reads answered from an older version (invalid: many cycles).

Each file is checked by the whole command in a fresh process (`splitbrain check
--workload W --json FILE`), whose wall time and peak resident memory (its VmHWM,
bench/checker_bench.py's measure) are printed, with the check's own time (after
reading and pairing), the graph's size and the verdict. Target: 100,000 transactions
checked in under 60 s and 2 GB. Run with `nice -n 10 python bench/txn_bench.py`
(sizes can be given: `python bench/txn_bench.py 1000 10000`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from checker_bench import KILLED, run_process, splitbrain_argv

from checker.formats import write_jsonl
from checker.txn.simulate import TxnWorkload, simulate

SIZES = (1_000, 10_000, 100_000)
TIME_LIMIT_S = 120.0
TARGET_S, TARGET_MIB = 60.0, 2048.0
SEED = 20


def main(sizes: tuple[int, ...]) -> None:
    print(f"transactional checker; python {sys.version.split()[0]}, {os.cpu_count()} cores; "
          f"seed {SEED}")
    print(f"{'workload':<9} {'history':<8} {'txns':>7} {'events':>7} {'gen s':>6} "
          f"{'wall s':>7} {'check s':>8} {'peak MiB':>9} {'nodes':>7} {'edges':>8} "
          f"{'SCCs':>5} {'verdict':<8} anomalies")
    with tempfile.TemporaryDirectory() as tmp:
        for stale in (0.0, 0.01):
            for kind in ("append", "wr"):
                for n in sizes:
                    row(tmp, kind, n, stale)
    print(f"target: {max(sizes):,} transactions in under {TARGET_S:.0f} s and "
          f"{TARGET_MIB:.0f} MiB")


def row(tmp: str, kind: str, n: int, stale: float) -> None:
    w = TxnWorkload(kind=kind, txns=n, processes=10, p_info=0.1, p_stale=stale)  # type: ignore[arg-type]
    started = time.perf_counter()
    ops = simulate(w, SEED)
    path = os.path.join(tmp, f"{kind}-{n}-{stale}.jsonl")
    with open(path, "w") as f:
        f.writelines(write_jsonl(op) for op in ops)
    gen = time.perf_counter() - started
    events = len(ops)
    del ops
    argv = [*splitbrain_argv(), "check", "--workload", kind, "--json",
            "--time-limit", str(TIME_LIMIT_S), path]
    code, out, wall, mib = run_process(argv, TIME_LIMIT_S + 60)
    label = "stale" if stale else "valid"
    if code == KILLED or not out.strip():
        print(f"{kind:<9} {label:<8} {n:>7} {'':>7} {gen:>6.1f} {wall:>7.2f} {'':>8} "
              f"{mib:>9.0f} exit {code}")
        return
    r = json.loads(out)
    g = r["graph"]
    anomalies = ", ".join(f"{k} {v}" for k, v in r["anomaly_counts"].items()) or "-"
    print(f"{kind:<9} {label:<8} {n:>7} {events:>7} {gen:>6.1f} {wall:>7.2f} "
          f"{r['seconds']:>8.2f} {mib:>9.0f} {g['nodes']:>7} {g['edges']:>8} "
          f"{g['cyclic_components']:>5} {r['verdict']:<8} {anomalies}", flush=True)


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
