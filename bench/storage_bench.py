"""Benchmark of the store's durable storage. It prints figures and asserts nothing.

1. Raw fsync and fdatasync latency of a small append on this disk (the floor), to a
   growing file and to a preallocated one.
2. DiskStorage.save with 1, 8 and 64 entries of 100 bytes per save: one write and one
   sync each, so entries/s grows with the batch while saves/s stays near the sync
   rate. This is the group commit the node driver gets from the Raft core's Ready.
   Twice: with preallocated segments (the default: fdatasync) and without them
   (preallocate_bytes=0: the file grows with each append, fsync).
3. How long a restart takes to replay the WAL written in 2 (the preallocated tail
   segment is read whole, zeros included).

Times are wall clock (time.perf_counter). Run: .venv/bin/python bench/storage_bench.py
[--dir D] [--seconds S]; D must be on the disk the store will use (default: a
temporary directory under the current directory).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from store.raft.types import Entry, HardState
from store.storage import DEFAULT_SEGMENT_BYTES, DiskStorage

ENTRY_BYTES = 100
BATCHES = (1, 8, 64)
RAW_SYNCS = 500


def raw_sync_latency(
    directory: Path, sync: Callable[[int], None], preallocate: int = 0
) -> list[float]:
    path = directory / "raw-sync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    record = b"x" * 200
    times = []
    try:
        if preallocate:
            os.posix_fallocate(fd, 0, preallocate)
            os.fsync(fd)
        for _ in range(RAW_SYNCS):
            t = time.perf_counter()
            os.write(fd, record)
            sync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return times


def bench_saves(
    directory: Path, per_save: int, seconds: float, preallocate: bool
) -> tuple[dict[str, float], Path]:
    data_dir = directory / f"saves-{per_save}-{'prealloc' if preallocate else 'grow'}"
    storage, _ = DiskStorage.open(data_dir, preallocate_bytes=None if preallocate else 0)
    payload = bytes(range(ENTRY_BYTES))
    index, latencies = 0, []
    before = storage.stats.fsyncs
    start = time.perf_counter()
    deadline = start + seconds
    while (now := time.perf_counter()) < deadline:
        entries = [Entry(1, index + k + 1, data=payload) for k in range(per_save)]
        storage.save(HardState(1, 1, index), entries)
        index += per_save
        latencies.append(time.perf_counter() - now)
    elapsed = time.perf_counter() - start
    fsyncs = storage.stats.fsyncs - before
    written = storage.stats.bytes
    storage.close()
    latencies.sort()
    return {
        "saves/s": len(latencies) / elapsed,
        "entries/s": index / elapsed,
        "fsyncs/s": fsyncs / elapsed,
        "MB/s": written / elapsed / 1e6,
        "p50 ms": statistics.median(latencies) * 1e3,
        "p99 ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "entries": index,
        "bytes": written,
    }, data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where to write")
    parser.add_argument("--seconds", type=float, default=3.0, help="per batch size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storage-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"disk: {directory}")
        print(f"\n1. raw sync latency of a 200-byte append ({RAW_SYNCS} each)")
        probes = (
            ("fsync", os.fsync, 0),
            ("fdatasync", os.fdatasync, 0),
            ("fdatasync, preallocated", os.fdatasync, DEFAULT_SEGMENT_BYTES),
        )
        for name, sync, preallocate in probes:
            t = sorted(raw_sync_latency(directory, sync, preallocate))
            print(
                f"   {name:24} p50 {statistics.median(t) * 1e6:6.0f} us  "
                f"p99 {t[int(len(t) * 0.99)] * 1e6:6.0f} us  {len(t) / sum(t):7.0f} /s"
            )
        print(f"\n2. DiskStorage.save, {ENTRY_BYTES}-byte entries, {args.seconds:g} s each")
        header = f"   {'segments':>13} {'entries/save':>12} {'saves/s':>9} {'entries/s':>10}"
        print(header + f" {'syncs/s':>8} {'MB/s':>6} {'p50 ms':>7} {'p99 ms':>7}")
        runs = []
        for preallocate in (True, False):
            mode = "preallocated" if preallocate else "growing"
            for per_save in BATCHES:
                r, data_dir = bench_saves(directory, per_save, args.seconds, preallocate)
                runs.append((mode, data_dir, int(r["entries"]), r["bytes"]))
                print(
                    f"   {mode:>13} {per_save:>12} {r['saves/s']:>9.0f} {r['entries/s']:>10.0f} "
                    f"{r['fsyncs/s']:>8.0f} {r['MB/s']:>6.2f} {r['p50 ms']:>7.3f} "
                    f"{r['p99 ms']:>7.3f}"
                )
        print("\n3. restart: open (replay) the WAL written above")
        for mode, data_dir, entries, written in runs:
            t = time.perf_counter()
            preallocate_bytes = None if mode == "preallocated" else 0
            storage, restored = DiskStorage.open(data_dir, preallocate_bytes=preallocate_bytes)
            elapsed = time.perf_counter() - t
            storage.close()
            assert len(restored.entries) == entries
            size = sum(p.stat().st_size for p in (data_dir / "member" / "wal").iterdir())
            print(
                f"   {mode:>13} {entries:>8} entries, {written / 1e6:5.1f} MB written, "
                f"{size / 1e6:5.1f} MB of files: {elapsed:6.3f} s "
                f"({entries / elapsed:,.0f} entries/s)"
            )


if __name__ == "__main__":
    main()
