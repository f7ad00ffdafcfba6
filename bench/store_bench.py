"""Benchmark of our store against etcd 3.4, side by side, as 3-member local clusters.

Each system gets a fresh 3-member cluster on 127.0.0.1 (same etcd flags: heartbeat
100 ms, election timeout 1000 ms); both run at once, idle but for the one being measured,
and take each workload in turn (etcd, then ours, then the next workload), so that the
two figures of a row are measured minutes apart at most on a shared machine whose load
changes. ``--rounds N`` repeats the whole series N times; a row then counts all rounds
(total operations over total time; percentiles over all latencies). The workloads:

- sequential PUT to the leader (1 client)
- PUT to the leader from 16 and from 64 concurrent clients
- sequential quorum GET on a follower (1 client)
- quorum GET on the leader from 16 concurrent clients
- the v3 API through the JSON gateway: put (1 and 16 clients), a txn of 4 operations
  (2 ranges, 2 puts) and a linearizable range (16 clients each), on the leader; skipped
  for a system that answers 404 there
- failover: SIGKILL the leader while a client writes continuously to every surviving
  member (a new PUT every 10 ms to each, on its own connection, however many are still
  waiting); the time from the kill to the first acknowledged write that a new leader
  committed (its X-Raft-Term is above the old leader's). Several trials; the killed
  member is restarted between them.
- with ``--restarts N``: SIGKILL every member, start them all again, and time from the
  start to the first write acknowledged in a new term (the same writer as failover).

The load client is the harness's own (harness.client.HttpConnection with the requests of
harness.etcd_v2, on uvloop), one keep-alive HTTP/1.1 connection per simulated client,
one request in flight per connection, in this process.
`--client threads` uses one http.client thread per simulated client instead (the client
of the reference figures); with 64 of them the GIL, not the server, sets the pace on a
2-core machine. The table reports the client's own CPU use (% of one core) so a
saturated client shows.

``--baseline DIR`` adds a third cluster, "base": our store run from the source tree DIR
(an earlier commit), measured in the same interleaved series.

    python bench/store_bench.py [--duration 5] [--rounds 1] [--trials 3] [--restarts 0]
                                [--systems etcd,store] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.blocking_http import KeepAliveClient
from harness.client import HttpConnection
from harness.etcd_v2 import encode
from harness.local import LocalCluster
from harness.ops import Invocation

REFERENCE = "shared/reference/figures.md (etcd, same machine class, http.client clients)"
REFERENCE_ETCD = {"put-seq": 497.0, "put-16": 1091.0, "put-64": 1523.0, "qget-follower": 424.0}
WARMUP_S = 0.5
KEYS_PER_CLIENT = 100  # clients cycle over their own keys, so the store stays small
FAILOVER_PACE_S = 0.01
REQUEST_TIMEOUT_S = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    clients: int
    method: str  # v2: PUT or quorum GET; v3: PUT, TXN (4 operations) or RANGE (linearizable)
    on_leader: bool  # else on a follower
    api: str = "v2"

    @property
    def reads(self) -> bool:
        return self.method in ("GET", "RANGE")


WORKLOADS = (
    Workload("put-seq", "PUT to the leader, 1 client", 1, "PUT", True),
    Workload("put-16", "PUT to the leader, 16 clients", 16, "PUT", True),
    Workload("put-64", "PUT to the leader, 64 clients", 64, "PUT", True),
    Workload("qget-follower", "quorum GET on a follower, 1 client", 1, "GET", False),
    Workload("qget-16", "quorum GET on the leader, 16 clients", 16, "GET", True),
    Workload("v3-put-seq", "v3 put to the leader, 1 client", 1, "PUT", True, "v3"),
    Workload("v3-put-16", "v3 put to the leader, 16 clients", 16, "PUT", True, "v3"),
    Workload("v3-txn-16", "v3 txn of 4 ops, leader, 16 clients", 16, "TXN", True, "v3"),
    Workload("v3-range-16", "v3 lin. range, leader, 16 clients", 16, "RANGE", True, "v3"),
)


@dataclass
class Result:
    ops: int
    errors: int
    seconds: float
    latencies: list[float]  # seconds, of the successful requests
    client_cpu: float  # CPU seconds this process used, over `seconds`

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class SystemRun:
    kind: str
    results: dict[str, Result] = field(default_factory=dict)
    failovers: list[float] = field(default_factory=list)
    failover_notes: list[str] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)


# -- load clients ------------------------------------------------------------------------


def operation(workload: Workload, client: int, i: int) -> Invocation:
    key = f"bench/c{client}-{i % KEYS_PER_CLIENT}"
    if workload.method == "GET":
        return Invocation("read", key=key)  # quorum=true: the client's default
    return Invocation("write", f"v{i}", key)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def v3_body(workload: Workload, client: int, i: int) -> tuple[str, bytes]:
    """The gateway path and JSON body of request ``i`` of a v3 workload's ``client``.

    A txn reads two of the client's keys and writes two others (as a read-write
    register transaction does), with no compare: it always succeeds."""
    def key(n: int) -> str:
        return _b64(f"bench/c{client}-{n % KEYS_PER_CLIENT}")

    value = _b64(f"v{i}")
    if workload.method == "PUT":
        return "/v3/kv/put", json.dumps({"key": key(i), "value": value}).encode()
    if workload.method == "RANGE":
        return "/v3/kv/range", json.dumps({"key": key(i)}).encode()
    ops = [
        {"request_range": {"key": key(i)}},
        {"request_put": {"key": key(i + 1), "value": value}},
        {"request_range": {"key": key(i + 2)}},
        {"request_put": {"key": key(i + 3), "value": value}},
    ]
    return "/v3/kv/txn", json.dumps({"success": ops}).encode()


def request(workload: Workload, client: int, i: int, host: str) -> bytes:
    """The whole HTTP/1.1 request."""
    if workload.api == "v2":
        return encode(operation(workload, client, i), host, prefix="")
    path, body = v3_body(workload, client, i)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _async_load(workload: Workload, port: int, seconds: float) -> tuple[int, int, list]:
    latencies: list[float] = []
    counts = [0, 0]  # ok, errors
    measuring = False
    deadline = time.perf_counter() + WARMUP_S + seconds

    async def one(client: int) -> None:
        conn = HttpConnection("127.0.0.1", port)
        i = 0
        try:
            while (now := time.perf_counter()) < deadline:
                data = request(workload, client, i, conn.host_header)
                status = (await conn.request(data, REQUEST_TIMEOUT_S)).status
                done = time.perf_counter()
                i += 1
                if measuring:
                    if status < 300:
                        counts[0] += 1
                        latencies.append(done - now)
                    else:
                        counts[1] += 1
        finally:
            conn.close()

    tasks = [asyncio.create_task(one(c)) for c in range(workload.clients)]
    await asyncio.sleep(WARMUP_S)
    measuring = True
    await asyncio.gather(*tasks)
    return counts[0], counts[1], latencies


async def _prefill(workload: Workload, port: int) -> None:
    """Write every key a read workload's clients will read, so that none answers 404."""
    write = Workload(workload.name, workload.title, workload.clients, "PUT", True, workload.api)

    async def one(client: int) -> None:
        conn = HttpConnection("127.0.0.1", port)
        try:
            for i in range(KEYS_PER_CLIENT):
                data = request(write, client, i, conn.host_header)
                status = (await conn.request(data, REQUEST_TIMEOUT_S)).status
                if status >= 300:
                    raise RuntimeError(f"prefill: PUT answered {status}")
        finally:
            conn.close()

    await asyncio.gather(*(one(c) for c in range(workload.clients)))


async def _has_v3(port: int) -> bool:
    conn = HttpConnection("127.0.0.1", port)
    try:
        probe = Workload("probe", "", 1, "RANGE", True, "v3")
        answer = await conn.request(request(probe, 0, 0, conn.host_header), REQUEST_TIMEOUT_S)
        return answer.status != 404
    finally:
        conn.close()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run_async(workload: Workload, port: int, seconds: float) -> Result:
    cpu = time.process_time()
    ok, errors, latencies = _run(_async_load(workload, port, seconds))
    return Result(ok, errors, seconds, latencies, time.process_time() - cpu)


def run_threads(workload: Workload, port: int, seconds: float) -> Result:
    latencies: list[list[float]] = [[] for _ in range(workload.clients)]
    errors = [0] * workload.clients
    measuring = threading.Event()
    stop = threading.Event()

    def one(client: int) -> None:
        with KeepAliveClient(f"http://127.0.0.1:{port}") as conn:
            i = 0
            while not stop.is_set():
                key = f"/bench/c{client}-{i % KEYS_PER_CLIENT}"
                started = time.perf_counter()
                if workload.method == "GET":
                    answer = conn.get(key, quorum="true")
                else:
                    answer = conn.put(key, f"v{i}")
                i += 1
                if measuring.is_set():
                    if answer.status < 300:
                        latencies[client].append(time.perf_counter() - started)
                    else:
                        errors[client] += 1

    threads = [threading.Thread(target=one, args=(c,)) for c in range(workload.clients)]
    for t in threads:
        t.start()
    stop.wait(WARMUP_S)  # pacing, not synchronisation: the warm-up period
    cpu = time.process_time()
    measuring.set()
    stop.wait(seconds)
    measuring.clear()
    used = time.process_time() - cpu
    stop.set()
    for t in threads:
        t.join()
    merged = [x for per in latencies for x in per]
    return Result(len(merged), sum(errors), seconds, merged, used)


# -- failover ----------------------------------------------------------------------------


def failover_trial(cluster: LocalCluster, timeout: float = 30.0) -> float:
    """Seconds from SIGKILL of the leader to the first write a new leader acknowledged."""
    leader = cluster.wait_ready(30.0)
    with cluster.client(leader) as client:
        old_term = int(client.put("/bench/failover", "before").header("x-raft-term") or 0)
    ports = [cluster.member(n).client_port for n in cluster.members if n != leader]
    killed_at = time.perf_counter()
    cluster.kill(leader)
    acked_at = _run(_first_new_term_ack(ports, old_term, timeout))
    cluster.restart(leader)
    cluster.wait_ready(60.0)
    if acked_at is None:
        raise TimeoutError(f"no write acknowledged within {timeout}s of killing {leader}")
    return acked_at - killed_at


def restart_trial(cluster: LocalCluster, timeout: float = 30.0) -> float:
    """Seconds from starting every member again after a SIGKILL of all of them to the
    first write acknowledged in a new term."""
    leader = cluster.wait_ready(30.0)
    with cluster.client(leader) as client:
        old_term = int(client.put("/bench/restart", "before").header("x-raft-term") or 0)
    for name in cluster.members:
        cluster.kill(name)
    ports = [cluster.member(n).client_port for n in cluster.members]
    started_at = time.perf_counter()
    cluster.up()
    acked_at = _run(_first_new_term_ack(ports, old_term, timeout))
    cluster.wait_ready(60.0)
    if acked_at is None:
        raise TimeoutError(f"no write acknowledged within {timeout}s of the restart")
    return acked_at - started_at


async def _first_new_term_ack(ports: list[int], old_term: int, timeout: float) -> float | None:
    """Every FAILOVER_PACE_S, a new PUT on a new connection to each survivor, each waiting
    as long as it takes: a request forwarded to the dead leader is lost and hangs (etcd
    answers it after 7 s), so one writer alone would measure etcd's request timeout."""
    done = asyncio.Event()
    acks: list[float] = []

    async def put(port: int, n: int) -> None:
        conn = HttpConnection("127.0.0.1", port)
        try:
            op = Invocation("write", n, f"bench/failover-{port}")
            answer = await conn.request(encode(op, conn.host_header, prefix=""), timeout)
            if answer.status < 300 and int(answer.headers.get("x-raft-term", 0)) > old_term:
                acks.append(time.perf_counter())
                done.set()
        except (OSError, TimeoutError):
            pass  # this survivor could not take it (yet): the next round tries again
        finally:
            conn.close()

    tasks: set[asyncio.Task] = set()
    deadline = time.perf_counter() + timeout
    n = 0
    while not done.is_set() and time.perf_counter() < deadline:
        for port in ports:
            n += 1
            tasks.add(asyncio.create_task(put(port, n)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), FAILOVER_PACE_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return min(acks) if acks else None


# -- running and printing ----------------------------------------------------------------


def measure(
    run: SystemRun, cluster: LocalCluster, workload: Workload, args: argparse.Namespace
) -> None:
    """One workload on one cluster; added to what earlier rounds measured."""
    load = run_async if args.client == "asyncio" else run_threads
    leader = cluster.wait_ready(30.0)
    target = leader if workload.on_leader else next(n for n in cluster.members if n != leader)
    if workload.api == "v3":
        if args.client != "asyncio":
            print(f"  {run.kind:5} {workload.name:14} skipped: v3 needs --client asyncio")
            return
        if not _run(_has_v3(cluster.member(leader).client_port)):
            print(f"  {run.kind:5} {workload.name:14} skipped: no v3 API (/v3/kv/range is 404)")
            return
    if workload.reads:
        _run(_prefill(workload, cluster.member(leader).client_port))
    result = load(workload, cluster.member(target).client_port, args.duration)
    print(
        f"  {run.kind:5} {workload.name:14} {result.throughput:8.0f} ops/s "
        f"p50 {result.percentile(50) * 1e3:6.2f} ms p99 {result.percentile(99) * 1e3:6.2f}"
        f" ms, {result.errors} errors, client CPU {client_cpu(result):3.0f}%, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    earlier = run.results.get(workload.name)
    if earlier is not None:
        result = Result(
            earlier.ops + result.ops,
            earlier.errors + result.errors,
            earlier.seconds + result.seconds,
            earlier.latencies + result.latencies,
            earlier.client_cpu + result.client_cpu,
        )
    run.results[workload.name] = result


def trials(run: SystemRun, cluster: LocalCluster, args: argparse.Namespace) -> None:
    kind = run.kind
    for trial in range(args.trials):
        seconds = failover_trial(cluster)
        run.failovers.append(seconds)
        print(f"  {kind:5} failover trial {trial + 1}: {seconds * 1e3:.0f} ms", flush=True)
    for trial in range(args.restarts):
        seconds = restart_trial(cluster)
        run.restarts.append(seconds)
        print(f"  {kind:5} kill-all restart {trial + 1}: {seconds * 1e3:.0f} ms", flush=True)


def new_cluster(kind: str, args: argparse.Namespace, root: Path) -> LocalCluster:
    if kind == "base":  # our store, run from the source tree given as the baseline
        return LocalCluster(3, "store", root / kind, env={"PYTHONPATH": str(args.baseline)})
    return LocalCluster(3, kind, root / kind)  # type: ignore[arg-type]


def bench_systems(args: argparse.Namespace, root: Path) -> dict[str, SystemRun]:
    runs: dict[str, SystemRun] = {}
    clusters: dict[str, LocalCluster] = {}
    with contextlib.ExitStack() as stack:
        for kind in args.systems:
            print(f"{kind}: 3 members in {root / kind}", flush=True)
            try:
                cluster = stack.enter_context(new_cluster(kind, args, root))
                cluster.wait_ready(60.0)
            except Exception as e:  # one system failing still reports the other
                print(f"  {kind} failed: {e}", file=sys.stderr, flush=True)
                continue
            clusters[kind] = cluster
            runs[kind] = SystemRun(kind)
        for _ in range(args.rounds):
            for workload in WORKLOADS:
                if workload.name not in args.workloads:
                    continue
                for kind in list(clusters):
                    try:
                        measure(runs[kind], clusters[kind], workload, args)
                    except Exception as e:
                        print(f"  {kind} failed: {e}", file=sys.stderr, flush=True)
                        del clusters[kind], runs[kind]
        for kind in list(clusters):
            try:
                trials(runs[kind], clusters[kind], args)
            except Exception as e:
                print(f"  {kind} failed: {e}", file=sys.stderr, flush=True)
                del runs[kind]
    return runs


def print_trials(
    title: str,
    etcd: SystemRun | None,
    ours: list[SystemRun],
    trials: Callable[[SystemRun], list[float]],
) -> None:
    print()
    print(f"{title:36} | {'system':5} | "
          f"{'mean ms':>7} | {'min ms':>7} | {'max ms':>7} | trials | ours/etcd")  # fmt: skip
    for run in (etcd, *ours):
        if run is None or not trials(run):
            continue
        seconds = trials(run)
        mean = statistics.mean(seconds)
        compared = ""
        if run is not etcd and etcd is not None and trials(etcd):
            compared = ratio(mean, statistics.mean(trials(etcd)))
        print(
            f"{'election timeout 1000 ms':36} | {run.kind:5} | {mean * 1e3:7.0f} | "
            f"{min(seconds) * 1e3:7.0f} | {max(seconds) * 1e3:7.0f} | "
            f"{len(seconds):6} | {compared}"
        )


def client_cpu(result: Result) -> float:
    return 100.0 * result.client_cpu / result.seconds if result.seconds else 0.0


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "-"


def print_table(runs: dict[str, SystemRun], args: argparse.Namespace) -> None:
    etcd = runs.get("etcd")
    ours = [run for kind, run in runs.items() if kind != "etcd"]
    print()
    print(f"3-member clusters on 127.0.0.1; {args.rounds} x {args.duration:.0f} s per workload "
          f"after {WARMUP_S} s warm-up each; client: {args.client}; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    header = f"{'workload':36} | {'system':5} | {'ops/s':>7} | {'p50 ms':>7} | {'p99 ms':>7}"
    print(header + f" | {'client CPU':>10} | ours/etcd")
    print("-" * (len(header) + 26))
    for workload in WORKLOADS:
        if workload.name not in args.workloads:
            continue
        for run in (etcd, *ours):
            if run is None or workload.name not in run.results:
                continue
            r = run.results[workload.name]
            compared = ""
            if run is not etcd and etcd is not None and workload.name in etcd.results:
                compared = ratio(r.throughput, etcd.results[workload.name].throughput)
            print(
                f"{workload.title:36} | {run.kind:5} | {r.throughput:7.0f} | "
                f"{r.percentile(50) * 1e3:7.2f} | {r.percentile(99) * 1e3:7.2f} | "
                f"{client_cpu(r):9.0f}% | {compared}"
            )
    if args.trials:
        print_trials("failover (kill leader -> first ack)", etcd, ours, lambda r: r.failovers)
    if args.restarts:
        print_trials("kill-all restart (start -> first ack)", etcd, ours, lambda r: r.restarts)
    print()
    print(f"etcd reference, {REFERENCE}:")
    print("  " + ", ".join(f"{k} {v:.0f} ops/s" for k, v in REFERENCE_ETCD.items()))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per workload")
    parser.add_argument("--rounds", type=int, default=1, help="times the workloads are run")
    parser.add_argument("--trials", type=int, default=3, help="failover trials per system")
    parser.add_argument("--restarts", type=int, default=0,
                        help="kill-all restart trials per system (default none)")  # fmt: skip
    parser.add_argument("--systems", default="etcd,store", help="comma-separated: etcd,store")
    parser.add_argument("--client", choices=("asyncio", "threads"), default="asyncio")
    parser.add_argument(
        "--workloads",
        default=",".join(w.name for w in WORKLOADS),
        help="comma-separated subset of " + ",".join(w.name for w in WORKLOADS),
    )
    parser.add_argument("--root", type=Path, help="keep data dirs and logs here")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run our store from this source tree as system 'base' (e.g. "
        "`git archive COMMIT | tar -x -C DIR`), to compare two versions in one run",
    )
    args = parser.parse_args(argv)
    args.workloads = set(args.workloads.split(","))
    args.systems = [s for s in args.systems.split(",") if s]
    unknown = set(args.systems) - {"etcd", "store"}
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.baseline is not None:
        if not (args.baseline / "store" / "__main__.py").is_file():
            parser.error(f"--baseline {args.baseline}: no store/__main__.py in it")
        args.systems.append("base")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        root = args.root or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        runs = bench_systems(args, root)
    print_table(runs, args)
    return 0 if len(runs) == len(args.systems) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the clusters stop cleanly
    sys.exit(main())
