"""Each fault has the effect it promises on a real cluster, and healing undoes it.

One 3-node etcd cluster in Docker for the module, from an image with etcd and nothing
else (no Python, no iptables, no shell tools of ours): every fault comes from outside
the image, and each is measured from outside too: TCP connects between the nodes'
network namespaces (from their helpers), the container's state in Docker, what a client
sees. Each test hurts the cluster through the nemesis (the same objects a run uses),
heals, and checks that nothing is left: no rules, no stopped process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.client import Node
from harness.etcd_v2 import EtcdV2Client
from harness.labels import owner_here
from harness.ops import Invocation
from harness.runner import wait_ready
from harness.system import make_system
from nemesis.core import FaultOp
from nemesis.kill import Kill
from nemesis.partition import CHAIN, Partition
from nemesis.pause import Pause
from nemesis.scenarios import CHAIN as SCENARIO_CHAIN
from nemesis.scenarios import Scenarios
from nemesis.slow import Slow
from tests.test_harness import docker_client

SEED = 20261130
ELECTION_S = 20.0


def make_cluster(system_name: str, size: int, **env: str) -> Any:
    from harness.docker import DockerCluster
    from harness.image import ensure_helper, ensure_node_image

    client = docker_client()
    system = make_system(system_name, {"client_timeout": 2.0})
    image = ensure_node_image(system.image, client)
    helper = ensure_helper(client)
    return DockerCluster(system, size, f"faults{random.Random().randrange(10**6)}", image.tag,
                         owner_here(), client=client, env=env or None,
                         helper_image=helper.tag)  # fmt: skip


def ready_cluster(system: str) -> Iterator[Any]:
    made = make_cluster(system, 3)
    try:
        made.up()
        asyncio.run(wait_ready(made.system, made, 60))
        yield made
    finally:
        made.down()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    yield from ready_cluster("etcd")


@pytest.fixture(scope="module")
def store() -> Iterator[Any]:
    yield from ready_cluster("store")


def leader(cluster: Any) -> str:
    return asyncio.run(wait_ready(cluster.system, cluster, ELECTION_S))


def invoke(nemesis: Any, cluster: Any, f: str, value: Any = None) -> Any:
    return asyncio.run(nemesis.invoke(cluster, FaultOp(f, value)))


def write(cluster: Any, name: str, key: str, value: int, timeout: float = 2.0) -> Any:
    async def go() -> Any:
        client = EtcdV2Client(timeout=timeout)
        node = next(n for n in cluster.nodes if n.name == name)
        await client.open(Node(name, node.host, node.client_port))
        try:
            return await client.invoke(Invocation("write", value, key))
        finally:
            await client.close()

    return asyncio.run(go())


def until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {what}")
        time.sleep(0.1)


def rules(cluster: Any, name: str, chain: str = CHAIN) -> str:
    code, output = cluster.net_exec(name, ["iptables", "-w", "-S", chain])
    return output if code == 0 else ""


PROBE = """
import socket, statistics, sys, time
host, port, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
times = []
for _ in range(count):
    started = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=limit).close()
    except OSError:
        pass  # given up after the limit: counted as the limit
    times.append((time.monotonic() - started) * 1000)
print(statistics.median(times), max(times))
"""


def connect_ms(
    cluster: Any, source: str, target: str, count: int = 20, limit: float = 5.0
) -> tuple[float, float]:
    """Median and max time (ms) of TCP connects from one node's network namespace (its
    helper: the node's image has no Python) to another's peer port."""
    peer = next(n for n in cluster.nodes if n.name == target)
    code, output = cluster.net_exec(source, [
        "python3", "-c", PROBE, peer.host, str(peer.peer_port), str(count), str(limit)
    ])  # fmt: skip
    assert code == 0, output
    median, worst = (float(x) for x in output.split())
    return median, worst


def test_the_etcd_image_holds_etcd_and_nothing_of_ours(cluster: Any) -> None:
    for program in ("python3", "iptables", "tc"):
        code, _ = cluster.exec("n1", ["sh", "-c", f"command -v {program}"])
        assert code != 0, f"the etcd image has {program}"
    assert cluster.exec("n1", ["etcd", "--version"])[0] == 0
    node, helper = cluster._container("n1"), cluster._helper("n1")
    node.reload()
    helper.reload()
    assert not node.attrs["HostConfig"]["CapAdd"], "the node itself has no added capability"
    assert helper.attrs["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
    assert node.attrs["HostConfig"]["NetworkMode"] == f"container:{helper.id}"


def test_isolating_the_leader_times_out_its_writes_and_the_majority_elects(cluster: Any) -> None:
    nemesis = Partition(kinds=["isolate-leader"], rng=random.Random(SEED))
    asyncio.run(nemesis.setup(cluster))
    old = leader(cluster)
    other = next(n.name for n in cluster.nodes if n.name != old)
    before, _ = connect_ms(cluster, old, other, count=3)
    done = invoke(nemesis, cluster, "partition", "isolate-leader")
    try:
        assert done.value["grudge"][old] == sorted(n.name for n in cluster.nodes if n.name != old)
        assert "-j DROP" in rules(cluster, old)
        during, _ = connect_ms(cluster, old, other, count=3, limit=1.0)
        answer = write(cluster, old, "isolated", 1)
        assert answer.type == "info", f"a write on the isolated old leader: {answer}"
        majority = [n for n in cluster.nodes if n.name != old]
        new = until(lambda: asyncio.run(cluster.system.leader(majority)), ELECTION_S,
                    "a leader among the majority")  # fmt: skip
        assert new != old
        assert write(cluster, new, "majority", 2).type == "ok"
    finally:
        healed = asyncio.run(nemesis.teardown(cluster))
    after, _ = connect_ms(cluster, old, other, count=3)
    print(f"connect {old}->{other}: {before:.2f} ms, partitioned {during:.0f} ms (gave up), "
          f"healed {after:.2f} ms")  # fmt: skip
    assert during >= 1000 > max(before, after) * 10, (before, during, after)
    assert old in healed
    assert all("-j DROP" not in rules(cluster, n.name) for n in cluster.nodes)
    leader(cluster)
    healed_at = time.monotonic()
    until(lambda: write(cluster, old, "healed", 3, timeout=5).type == "ok", 60,
          f"a write through {old} after the heal")  # fmt: skip
    print(f"writes through {old} work again {time.monotonic() - healed_at:.1f} s after the heal")


def test_a_lagging_minority_is_cut_off_then_wins_without_the_leader(cluster: Any) -> None:
    nemesis = Scenarios(scenarios=["lagging-minority"], rng=random.Random(SEED))
    asyncio.run(nemesis.setup(cluster))
    old = leader(cluster)
    first = FaultOp("scenario", "lagging-minority")
    [move] = nemesis.follow_ups(first)
    try:
        done = asyncio.run(nemesis.invoke(cluster, first))
        behind = [n for n, g in done.value["grudge"].items() if len(g) == 2]
        assert len(behind) == 1 and old not in behind, done.value
        lagging = behind[0]
        assert write(cluster, old, "while-lagging", 1).type == "ok"
        assert write(cluster, lagging, "on-the-lagging-node", 2, timeout=1).type == "info"
        moved = asyncio.run(nemesis.invoke(cluster, move))
        assert moved.value["behind"] == [lagging] and moved.value["leader"] == old, moved.value
        assert moved.value["grudge"][old] == sorted(n.name for n in cluster.nodes
                                                    if n.name != old), moved.value
        joined = [n for n in cluster.nodes if n.name != old]
        new = until(lambda: asyncio.run(cluster.system.leader(joined)), ELECTION_S,
                    "a leader among the lagging node and the fresh one")  # fmt: skip
        assert new != old
        until(lambda: write(cluster, lagging, "lagging-side", 3, timeout=2).type == "ok", 30,
              f"a write through {lagging}, once on the winning side")  # fmt: skip
        print(f"{lagging} lagged, then won a majority with {new} without {old}")
    finally:
        healed = asyncio.run(nemesis.invoke(cluster, nemesis.recovery()))
    assert healed.value["restarted"] == [] and old in healed.value["healed"]
    assert all("-j DROP" not in rules(cluster, n.name, SCENARIO_CHAIN) for n in cluster.nodes)
    leader(cluster)


def test_a_deposed_leader_resumed_away_from_the_new_one_is_told_by_the_others(
        store: Any) -> None:
    """`deposed-leader`: the old leader paused and cut off; resumed with only the new
    leader cut off from it, our store's followers answer it with their later term."""
    nemesis = Scenarios(scenarios=["deposed-leader"], rng=random.Random(SEED))
    asyncio.run(nemesis.setup(store))
    old = leader(store)
    first = FaultOp("scenario", "deposed-leader")
    [resume] = nemesis.follow_ups(first)
    try:
        done = asyncio.run(nemesis.invoke(store, first))
        others = [n for n in store.nodes if n.name != old]
        assert done.value["paused"] == old, done.value
        assert done.value["grudge"][old] == sorted(n.name for n in others), done.value
        new = until(lambda: asyncio.run(store.system.leader(others)), ELECTION_S,
                    "a new leader while the old one is paused and cut off")  # fmt: skip
        woke = asyncio.run(nemesis.invoke(store, resume))
        assert woke.value["resumed"] == [old] and woke.value["leader"] == new, woke.value
        assert woke.value["grudge"] == {old: [new], new: [old]}, woke.value
        me = [n for n in store.nodes if n.name == old]
        until(lambda: asyncio.run(store.system.leader(me)) != old, ELECTION_S,
              f"{old} no longer leading once resumed")  # fmt: skip
        print(f"{old} paused, {new} elected; {old} resumed cut off from {new} only: deposed")
    finally:
        healed = asyncio.run(nemesis.invoke(store, nemesis.recovery()))
    assert healed.value["resumed"] == [] and old in healed.value["healed"]
    assert all("-j DROP" not in rules(store, n.name, SCENARIO_CHAIN) for n in store.nodes)
    leader(store)


def test_a_node_killed_while_partitioned_comes_back_partitioned(cluster: Any) -> None:
    partition = Partition(kinds=["isolate"], rng=random.Random(SEED))
    kill = Kill(rng=random.Random(SEED))  # a node named as the target: n1
    asyncio.run(partition.setup(cluster))
    asyncio.run(kill.setup(cluster))
    leader(cluster)
    asyncio.run(partition._apply(cluster, {"n1": frozenset({"n2", "n3"}),
                                           "n2": frozenset({"n1"}), "n3": frozenset({"n1"})}))
    try:
        assert invoke(kill, cluster, "kill", "n1").value["nodes"] == ["n1"]
        assert not cluster.running("n1")
        invoke(kill, cluster, "restart")
        assert cluster.running("n1")
        assert "-j DROP" in rules(cluster, "n1"), "n1 came back without its rules"
        _, worst = connect_ms(cluster, "n1", "n2", count=3, limit=1.0)
        print(f"n1 killed and restarted while partitioned: connect n1->n2 {worst:.0f} ms "
              "(gave up)")  # fmt: skip
        assert worst >= 1000, f"n1 reached n2 after its restart ({worst:.0f} ms)"
        assert write(cluster, "n1", "killed-partitioned", 1).type == "info"
    finally:
        asyncio.run(partition.teardown(cluster))
    _, worst = connect_ms(cluster, "n1", "n2", count=3)
    print(f"healed: connect n1->n2 {worst:.2f} ms")
    assert worst < 100, f"healed, a connect n1->n2 took {worst:.0f} ms"
    until(lambda: write(cluster, "n1", "healed-after-kill", 2, timeout=5).type == "ok", 60,
          "a write through n1 after the heal")  # fmt: skip


def test_pausing_the_leader_moves_leadership_and_resuming_brings_it_back(cluster: Any) -> None:
    nemesis = Pause(targets=["leader"], rng=random.Random(SEED))
    asyncio.run(nemesis.setup(cluster))
    old = leader(cluster)
    done = invoke(nemesis, cluster, "pause", "leader")
    try:
        assert done.value["nodes"] == [old]
        container = cluster._container(old)
        container.reload()
        assert container.attrs["State"]["Paused"] is True
        others = [n for n in cluster.nodes if n.name != old]
        new = until(lambda: asyncio.run(cluster.system.leader(others)), ELECTION_S,
                    "a new leader while the old one is paused")  # fmt: skip
        assert new != old
        assert write(cluster, old, "paused", 1, timeout=1).type == "info"
        print(f"{old} paused: State.Paused true, {new} elected, a write through {old} timed out")
    finally:
        asyncio.run(nemesis.teardown(cluster))
    container.reload()
    assert container.attrs["State"]["Paused"] is False
    leader(cluster)
    until(lambda: write(cluster, old, "resumed", 2, timeout=5).type == "ok", 60,
          f"a write through {old} after it resumed")  # fmt: skip


# Reads the node's CPU cgroup from inside it (v1 or v2): its CFS quota and how many
# periods the kernel has throttled it, after a CPU-bound loop in the node's cgroup.
CGROUP_CPU = """
import pathlib
sum(range(2_000_000))
v1 = pathlib.Path("/sys/fs/cgroup/cpu")
if (v1 / "cpu.cfs_quota_us").exists():
    quota = int((v1 / "cpu.cfs_quota_us").read_text())
    stat = (v1 / "cpu.stat").read_text()
else:
    head = pathlib.Path("/sys/fs/cgroup/cpu.max").read_text().split()[0]
    quota = -1 if head == "max" else int(head)
    stat = pathlib.Path("/sys/fs/cgroup/cpu.stat").read_text()
print(quota, dict(line.split() for line in stat.splitlines())["nr_throttled"])
"""


def cgroup_cpu(cluster: Any, name: str) -> tuple[int, int]:
    """(CFS quota in µs, -1 for none; periods throttled so far) of the node's cgroup, as
    the kernel sees it after a CPU-bound loop run inside the node (the store's image has
    Python; the exec'd process is in the node's cgroup, under its quota)."""
    code, output = cluster.exec(name, ["python3", "-c", CGROUP_CPU])
    assert code == 0, output
    quota, throttled = output.split()
    return int(quota), int(throttled)


def test_slowing_a_follower_sets_its_cpu_quota_and_healing_lifts_it(store: Any) -> None:
    nemesis = Slow(cpus=0.05, rng=random.Random(SEED))
    asyncio.run(nemesis.setup(store))
    old = leader(store)
    victim = next(n.name for n in store.nodes if n.name != old)
    quota, throttled_before = cgroup_cpu(store, victim)
    assert quota == -1, quota
    done = invoke(nemesis, store, "slow", {"target": victim, "cpus": 0.05})
    container = store._container(victim)
    try:
        assert done.value == {"target": victim, "nodes": [victim], "leader": old, "cpus": 0.05}
        container.reload()
        assert (container.attrs["HostConfig"]["CpuQuota"],
                container.attrs["HostConfig"]["CpuPeriod"]) == (5_000, 100_000)  # fmt: skip
        quota, throttled_during = cgroup_cpu(store, victim)
        until(lambda: write(store, victim, "slowed", 1, timeout=5).type == "ok", 30,
              f"a write through the slowed {victim}")  # fmt: skip
    finally:
        asyncio.run(nemesis.teardown(store))
    container.reload()
    assert container.attrs["HostConfig"]["CpuQuota"] <= 0  # no quota
    after, _ = cgroup_cpu(store, victim)
    print(f"{victim}: quota {quota} us while slowed, periods throttled "
          f"{throttled_before} -> {throttled_during}; quota after the heal {after}")
    # The kernel applied the quota to the node's own processes and held them back:
    # counted by the kernel, not timed.
    assert quota == 5_000 and throttled_during > throttled_before, (quota, throttled_during)
    assert after == -1, after


def test_killing_a_node_ends_its_process_and_restart_brings_it_back(cluster: Any) -> None:
    nemesis = Kill(targets=["random"], rng=random.Random(SEED))
    asyncio.run(nemesis.setup(cluster))
    leader(cluster)
    done = invoke(nemesis, cluster, "kill", "random")
    [victim] = done.value["nodes"]
    other = next(n.name for n in cluster.nodes if n.name != victim)
    try:
        container = cluster._container(victim)
        container.reload()
        assert container.status == "exited", container.status
        # its network namespace lives on in the helper, with nobody listening: refused at once
        median, _ = connect_ms(cluster, other, victim, count=3, limit=1.0)
        print(f"{victim} killed: container {container.status}, a connect to it refused in "
              f"{median:.2f} ms")  # fmt: skip
        assert median < 100, f"a connect to the killed {victim} took {median:.0f} ms"
        assert write(cluster, victim, "dead", 1, timeout=1).type in ("fail", "info")
    finally:
        asyncio.run(nemesis.teardown(cluster))
    assert cluster.running(victim)
    leader(cluster)
    until(lambda: write(cluster, victim, "restarted", 2, timeout=5).type == "ok", 60,
          f"a write through {victim} after its restart")  # fmt: skip


def test_killing_all_nodes_loses_no_acknowledged_write(store: Any) -> None:
    nemesis = Kill(targets=["all"], rng=random.Random(SEED))
    leader(store)
    acked = {f"k{i}": i for i in range(20) if write(store, "n1", f"k{i}", i).type == "ok"}
    assert len(acked) == 20
    done = invoke(nemesis, store, "kill", "all")
    assert sorted(done.value["nodes"]) == ["n1", "n2", "n3"]
    assert not any(store.running(n.name) for n in store.nodes)
    asyncio.run(nemesis.teardown(store))
    leader(store)

    async def read_all() -> dict[str, Any]:
        client = EtcdV2Client(timeout=5)
        node = store.nodes[1]
        await client.open(Node(node.name, node.host, node.client_port))
        try:
            return {k: (await client.invoke(Invocation("read", key=k))).value for k in acked}
        finally:
            await client.close()

    assert asyncio.run(read_all()) == acked


@pytest.mark.parametrize("nodes", [3, 5])
def test_our_store_is_linearizable_under_every_fault_family(nodes: int, tmp_path: Any) -> None:
    from harness.progress import Progress
    from harness.runner import run
    from harness.spec import parse

    docker_client()
    spec = parse({
        "name": f"store-all-faults-{nodes}", "system": "store", "nodes": nodes,
        "concurrency": 2 * nodes, "time_limit": 40, "seed": SEED + nodes,
        "results": str(tmp_path),
        "nemesis": {
            "faults": ["kill", "pause", "partition", "loss", "delay", "clock"],
            "kill": {"targets": ["leader", "minority", "all"]},
            "partition": {"kinds": ["isolate-leader", "halves", "majorities-ring", "bridge",
                                    "one-way"]},
            "schedule": {"kind": "interval", "fault": 2, "heal": 1},
        },
    })  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    results = outcome.results.to_json()
    summary = f"seed {spec.seed}, results in {outcome.directory}"
    assert outcome.exit_code == 0, f"{summary}: {str(results)[:3000]}"
    families = {f["f"] for f in results["stats"]["faults"]}
    assert families == {"kill", "pause", "partition", "loss", "delay", "clock"}, (
        f"{summary}: only {families} happened"
    )
    final = [op for op in outcome.results.checkers["linearizable"].get("keys", [])]
    assert final == [], summary


def test_delay_slows_round_trips_between_nodes_and_healing_restores_them(cluster: Any) -> None:
    from nemesis.packets import Delay

    nemesis = Delay(delay_ms=50, jitter_ms=5, rng=random.Random(SEED))
    asyncio.run(nemesis.setup(cluster))
    before, _ = connect_ms(cluster, "n1", "n2")
    done = invoke(nemesis, cluster, "delay", {"ms": 50, "jitter_ms": 5})
    try:
        during, _ = connect_ms(cluster, "n1", "n2")
    finally:
        asyncio.run(nemesis.teardown(cluster))
    after, _ = connect_ms(cluster, "n1", "n2")
    print(f"connect n1->n2: {before:.2f} ms, {during:.2f} ms delayed ({done.value}), {after:.2f}")
    assert before < 20 and after < 20, (before, after)
    assert during > 40, f"a 50 ms delay each way: a connect took {during:.1f} ms (median)"


def test_loss_drops_packets_between_nodes_and_healing_restores_them(cluster: Any) -> None:
    from nemesis.packets import Loss

    nemesis = Loss(probabilities=[0.3], rng=random.Random(SEED))
    asyncio.run(nemesis.setup(cluster))
    _, before = connect_ms(cluster, "n1", "n3")
    invoke(nemesis, cluster, "loss", 0.3)
    try:
        # A lost SYN or SYN-ACK is sent again after a second: with 30 % of the packets
        # dropped both ways, a connect has no loss with p = 0.49, all 20 with p < 1e-6.
        _, during = connect_ms(cluster, "n1", "n3", count=20)
    finally:
        asyncio.run(nemesis.teardown(cluster))
    _, after = connect_ms(cluster, "n1", "n3")
    print(f"connect n1->n3, slowest of 20: {before:.1f} ms, at 30 % loss {during:.0f} ms, "
          f"healed {after:.1f} ms")  # fmt: skip
    assert before < 500 and after < 500, (before, after)
    assert during >= 900, f"20 connects at 30 % loss, the slowest took {during:.0f} ms"


def test_clock_bump_moves_a_nodes_wall_clock_and_reset_brings_it_back() -> None:
    """The store's HTTP Date header is its wall clock (time.time(), through libc)."""
    import email.utils

    from nemesis import clock
    from nemesis.clock import Clock

    made = make_cluster("store", 1, **clock.environment())

    def skew_s() -> float:
        code, output = made.exec("n1", ["python3", "-c", (
            "import urllib.request, sys; "
            f"print(urllib.request.urlopen('{made.nodes[0].client_url}/version').headers['Date'])"
        )])  # fmt: skip
        assert code == 0, output
        return email.utils.parsedate_to_datetime(output.strip()).timestamp() - time.time()

    try:
        made.up()
        asyncio.run(wait_ready(made.system, made, 60))
        nemesis = Clock(rng=random.Random(SEED))
        asyncio.run(nemesis.setup(made))
        assert abs(skew_s()) < 3
        bump = {"kind": "bump", "ms": 3_600_000, "target": "all"}
        invoke(nemesis, made, "clock", bump)
        until(lambda: skew_s() > 3590, 10, "the node's clock an hour ahead")
        asyncio.run(nemesis.teardown(made))
        until(lambda: abs(skew_s()) < 3, 10, "the node's clock back")
    finally:
        made.down()


def test_clock_faults_are_refused_for_etcd() -> None:
    from types import SimpleNamespace

    from nemesis.clock import Clock
    from nemesis.core import FaultRefused

    etcd = SimpleNamespace(system=make_system("etcd"), nodes=[])
    with pytest.raises(FaultRefused, match="reads the clock without libc"):
        asyncio.run(Clock().setup(etcd))  # type: ignore[arg-type]


def test_network_faults_are_refused_on_local_processes(tmp_path: Any) -> None:
    from harness.local import LocalCluster
    from nemesis.core import FaultRefused
    from nemesis.packets import Delay, Loss

    local = LocalCluster(3, make_system("store"), tmp_path)  # not started: nothing to hurt
    for nemesis in (Partition(), Loss(), Delay()):
        with pytest.raises(FaultRefused, match=r"LocalCluster backend cannot do: Network"):
            asyncio.run(nemesis.setup(local))
