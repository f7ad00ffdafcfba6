"""Benchmark of the harness itself, and of the demo test on our store and on etcd.

1. Recording rate: the harness must never be the bottleneck. The production interpreter,
   etcd v2 client, recorder and register workload, at concurrency 10, against a trivial
   HTTP server on 127.0.0.1 (another process, so it has the other core) that answers
   every request at once. Printed: operations recorded per second (target: 5,000), the
   harness's CPU use.
2. The demo spec (specs/demo.yaml: 5 nodes in Docker, 10 clients, leaders and random
   nodes killed, partitions, pauses) on our store and on etcd 3.4, one after the other: ok
   operations per second, availability, and the unavailability window after each
   fault (from the kill until the first operation invoked after it succeeded; and the
   longest stretch without any ok completion while the fault lasted).

    python bench/harness_bench.py [--seconds 10] [--demo-time 60] [--systems store,etcd]
                                  [--skip-demo]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.client import Client  # noqa: E402
from harness.generator import Clients, TimeLimit  # noqa: E402
from harness.interpreter import Interpreter  # noqa: E402
from harness.progress import Progress  # noqa: E402
from harness.recorder import Recorder  # noqa: E402
from harness.runner import run  # noqa: E402
from harness.spec import load, override  # noqa: E402
from harness.system import Etcd, NodeSpec, client_node  # noqa: E402
from harness.workload import Register  # noqa: E402
from nemesis.core import NoNemesis  # noqa: E402

TARGET_OPS_S = 5000
BODY = b'{"action":"get","node":{"key":"/k","value":"1","modifiedIndex":7,"createdIndex":7}}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


def serve(port: int) -> None:
    """The trivial server: one fixed answer per request (requests are read whole)."""
    import httptools
    import uvloop

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.write(ANSWER)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Server, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recording_rate(seconds: float, concurrency: int = 10) -> tuple[float, float, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        workload = Register(concurrency=concurrency, ops_per_key=1000)
        system = Etcd()
        node = NodeSpec("n1", "127.0.0.1", port, port, "/")

        async def open_client(slot: int) -> Client:
            client = system.client(workload.client_options())
            await client.open(client_node(node))
            return client

        with tempfile.TemporaryDirectory() as tmp:
            recorder = Recorder(Path(tmp) / "history.jsonl")

            async def main() -> None:
                gen = Clients(TimeLimit(seconds, workload.generator()))
                interpreter = Interpreter(
                    gen, concurrency, open_client, NoNemesis(), None,  # type: ignore[arg-type]
                    recorder, random.Random(1),
                )  # fmt: skip
                recorder.begin()
                await interpreter.run()

            cpu = time.process_time()
            started = time.monotonic()
            import uvloop

            uvloop.run(main())
            wall = time.monotonic() - started
            used = time.process_time() - cpu
            recorder.close()
            done = sum(recorder.tally.completed.values())
        return done / wall, used / wall * 100, done
    finally:
        server.terminate()
        server.wait()


def demo(system: str, time_limit: float, results: Path) -> dict[str, object]:
    spec = override(load(ROOT / "specs" / "demo.yaml"), system=system, time_limit=time_limit,
                    results=str(results), seed=1)  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    stats = outcome.results.stats or {}
    ok = sum(c.get("ok", 0) for c in stats.get("ops", {}).values())
    faults = stats.get("faults", [])
    return {
        "verdict": outcome.results.verdict,
        "ok_per_s": ok / time_limit,
        "availability": stats.get("availability"),
        "faults": faults,
        "dir": outcome.directory,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--demo-time", type=float, default=60.0)
    p.add_argument("--systems", default="store,etcd")
    p.add_argument("--skip-demo", action="store_true")
    args = p.parse_args()
    if args.serve:
        serve(args.serve)
        return
    rate, cpu, done = recording_rate(args.seconds)
    print(f"== harness recording rate: concurrency 10, trivial server on 127.0.0.1, "
          f"{args.seconds:g} s")  # fmt: skip
    verdict = "meets" if rate >= TARGET_OPS_S else "BELOW"
    print(f"{rate:8.0f} ops/s recorded ({done} operations; harness CPU {cpu:.0f} % of a core); "
          f"{verdict} the target of {TARGET_OPS_S} ops/s")  # fmt: skip
    if args.skip_demo:
        return
    print(f"\n== demo spec (specs/demo.yaml), {args.demo_time:g} s each, Docker, 5 nodes, "
          "10 clients; partitions, kills, pauses (fault 5 s, heal 5 s)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="splitbrain-bench-") as tmp:
        rows = {s: demo(s, args.demo_time, Path(tmp)) for s in args.systems.split(",")}
    print(
        f"{'system':6} | {'verdict':7} | {'ok ops/s':>8} | {'availability':>12} | "
        "unavailable after each fault (s): first ok after / longest gap"
    )
    for system, row in rows.items():
        faults = row["faults"]
        windows = ", ".join(
            f"{describe_fault(f)} {f['unavailable_s']}/{f['longest_ok_gap_s']}"
            for f in faults  # type: ignore[union-attr]
        )
        print(f"{system:6} | {row['verdict']!s:7} | {row['ok_per_s']:8.0f} | "
              f"{row['availability']:12.4f} | {windows}")  # fmt: skip
        gaps = [f["longest_ok_gap_s"] for f in faults if is_leader_kill(f)]  # type: ignore[union-attr]
        if gaps:
            print(f"{'':6}   leader kills: longest gap median {statistics.median(gaps):.3f} s "
                  f"over {len(gaps)}")  # fmt: skip


def hits_leader(fault: dict[str, Any]) -> bool:
    value = fault["value"]
    return isinstance(value, dict) and value.get("leader") in value.get("nodes", [])


def is_leader_kill(fault: dict[str, Any]) -> bool:
    return fault["f"] == "kill" and hits_leader(fault)


def describe_fault(fault: dict[str, Any]) -> str:
    value = fault["value"] if isinstance(fault["value"], dict) else {}
    what = value.get("kind") or "+".join(value.get("nodes", []))
    return f"{fault['f']} {what}{' (leader)' if hits_leader(fault) else ''}"


if __name__ == "__main__":
    main()
