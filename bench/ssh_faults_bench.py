"""Each fault on the ssh backend, measured from outside, as tests/test_faults.py does
for Docker: TCP connects from one host to another's peer port before, during and after
the fault, and what a client sees. The hosts are three sshd containers
(tests/ssh_hosts.py), reached by the harness over SSH only; our store runs on them.
Prints one line per fault (the figures of docs/real-machines.md's table).

    python bench/ssh_faults_bench.py [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.client import Node  # noqa: E402
from harness.runner import wait_ready  # noqa: E402
from harness.spec import SshSpec  # noqa: E402
from harness.ssh import SshCluster  # noqa: E402
from harness.system import get_json, make_system  # noqa: E402
from nemesis import clock  # noqa: E402
from nemesis.clock import Clock  # noqa: E402
from nemesis.core import FaultOp  # noqa: E402
from nemesis.kill import Kill  # noqa: E402
from nemesis.packets import Delay, Loss  # noqa: E402
from nemesis.partition import Partition  # noqa: E402
from nemesis.pause import Pause  # noqa: E402
from tests.ssh_hosts import make_hosts  # noqa: E402
from tests.test_faults import connect_ms, write  # noqa: E402
from tests.test_harness import docker_client  # noqa: E402


def leader(cluster: Any) -> str:
    return asyncio.run(wait_ready(cluster.system, cluster, 30))


def invoke(nemesis: Any, cluster: Any, f: str, value: Any = None) -> Any:
    return asyncio.run(nemesis.invoke(cluster, FaultOp(f, value)))


def leader_uptime(cluster: Any, name: str) -> float:
    """The leader's own idea of how long it has led (store: time.time() - leader_since),
    which moves with its wall clock."""
    node = next(n for n in cluster.nodes if n.name == name)
    stats = asyncio.run(get_json(Node(name, node.host, node.client_port), "/v2/stats/self", 2))
    return float(stats["leaderInfo"]["uptime"].rstrip("s"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        hosts = make_hosts(docker_client(), 3, Path(tmp))
        try:
            spec = SshSpec(**hosts.ssh(3, hosts=tuple(hosts.addresses)))
            cluster = SshCluster(make_system("store", {"client_timeout": 2.0}), spec,
                                 "bench", print, clock.environment())  # fmt: skip
            started = time.monotonic()
            cluster.prepare()
            print(f"prepared 3 hosts in {time.monotonic() - started:.1f} s")
            try:
                cluster.up()
                measure(cluster, rng)
            finally:
                cluster.down()
        finally:
            hosts.remove()


def measure(cluster: Any, rng: random.Random) -> None:
    old = leader(cluster)
    other = next(n.name for n in cluster.nodes if n.name != old)

    partition = Partition(kinds=["isolate-leader"], rng=rng)
    asyncio.run(partition.setup(cluster))
    before, _ = connect_ms(cluster, old, other, count=5)
    invoke(partition, cluster, "partition", "isolate-leader")
    during, _ = connect_ms(cluster, old, other, count=3, limit=1.0)
    answer = write(cluster, old, "isolated", 1)
    asyncio.run(partition.teardown(cluster))
    after, _ = connect_ms(cluster, old, other, count=5)
    print(f"partition (isolate {old}): connect {before:.2f} ms, in force {during:.0f} ms "
          f"(gave up at 1 s), write through it {answer.type}; healed {after:.2f} ms")

    loss = Loss(probabilities=[0.3], rng=rng)
    asyncio.run(loss.setup(cluster))
    _, before = connect_ms(cluster, old, other, count=20)
    invoke(loss, cluster, "loss", 0.3)
    _, during = connect_ms(cluster, old, other, count=20)
    asyncio.run(loss.teardown(cluster))
    _, after = connect_ms(cluster, old, other, count=20)
    print(f"loss 30 %: slowest of 20 connects {before:.1f} ms, in force {during:.0f} ms, "
          f"healed {after:.1f} ms")

    delay = Delay(delay_ms=50, jitter_ms=5, rng=rng)
    asyncio.run(delay.setup(cluster))
    before, _ = connect_ms(cluster, old, other, count=10)
    invoke(delay, cluster, "delay", {"ms": 50, "jitter_ms": 5})
    during, _ = connect_ms(cluster, old, other, count=10)
    asyncio.run(delay.teardown(cluster))
    after, _ = connect_ms(cluster, old, other, count=10)
    print(f"delay 50 ± 5 ms ({delay.mode}): connect {before:.2f} ms, in force {during:.1f} ms, "
          f"healed {after:.2f} ms")

    target = leader(cluster)
    source = next(n.name for n in cluster.nodes if n.name != target)
    kill = Kill(rng=rng)
    started = time.monotonic()
    invoke(kill, cluster, "kill", "leader")
    killed_s = time.monotonic() - started
    refused, _ = connect_ms(cluster, source, target, count=3, limit=1.0)
    running = cluster.running(target)
    started = time.monotonic()
    asyncio.run(kill.teardown(cluster))
    restart_s = time.monotonic() - started
    leader(cluster)
    print(f"kill {target}: exited in {killed_s:.2f} s (running: {running}), connect to it "
          f"{refused:.2f} ms (refused); restarted in {restart_s:.2f} s, write through it "
          f"{write(cluster, target, 'killed', 2, timeout=5).type}")

    target = leader(cluster)
    pause = Pause(rng=rng)
    invoke(pause, cluster, "pause", "leader")
    answer = write(cluster, target, "paused", 3, timeout=1)
    others = [n for n in cluster.nodes if n.name != target]
    started = time.monotonic()
    while asyncio.run(cluster.system.leader(others)) is None and time.monotonic() - started < 20:
        time.sleep(0.05)
    elected = time.monotonic() - started
    asyncio.run(pause.teardown(cluster))
    leader(cluster)
    print(f"pause {target}: write through it {answer.type} (1 s timeout), a new leader "
          f"among the others in {elected:.1f} s; resumed, write through it "
          f"{write(cluster, target, 'resumed', 4, timeout=5).type}")

    partition = Partition(kinds=["isolate"], rng=rng)
    asyncio.run(partition.setup(cluster))
    invoke(partition, cluster, "partition", "isolate")
    isolated = next(n for n, g in partition._grudge.items() if len(g) == len(cluster.nodes) - 1)
    cluster.kill(isolated)
    cluster.start(isolated)
    peer = next(n.name for n in cluster.nodes if n.name != isolated)
    during, _ = connect_ms(cluster, isolated, peer, count=3, limit=1.0)
    asyncio.run(partition.teardown(cluster))
    after, _ = connect_ms(cluster, isolated, peer, count=3)
    print(f"kill during a partition ({isolated} isolated): restarted, connect {during:.0f} ms "
          f"(rules still there); healed {after:.2f} ms")


    target = leader(cluster)
    moved = Clock(kinds=["bump"], ms=[60_000], targets=["leader"], rng=rng)
    asyncio.run(moved.setup(cluster))
    before = leader_uptime(cluster, target)
    invoke(moved, cluster, "clock", {"kind": "bump", "ms": 60_000, "target": "leader"})
    time.sleep(2.5)  # libfaketime reads its file at most once a second
    during = leader_uptime(cluster, target)
    asyncio.run(moved.teardown(cluster))
    time.sleep(2.5)
    after = leader_uptime(cluster, target)
    print(f"clock bump +60 s on {target} (libfaketime): its leader uptime {before:.1f} s, "
          f"in force {during:.1f} s, reset {after:.1f} s")

if __name__ == "__main__":
    main()
