"""Faults as plans: grudges, targets and schedules, without a cluster.

What each fault does to a real cluster is tested in tests/test_faults.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from cluster.node import NodeSpec
from harness.generator import Context, Worker
from harness.ops import Invocation
from harness.schedule import Steps, random_mix
from harness.spec import SpecError, StepSpec, parse
from nemesis import make_nemesis
from nemesis.core import Bag, Composite, FaultOp, pick
from nemesis.partition import bridge, grudge_for, halves, isolate, majorities_ring, one_way
from nemesis.pause import Pause
from nemesis.slow import Slow

NODES = ["n1", "n2", "n3", "n4", "n5"]
SEEDS = range(20)


def hears(grudge: dict[str, frozenset[str]], node: str) -> set[str]:
    return set(NODES) - set(grudge.get(node, ()))


def test_isolate_cuts_one_node_from_all_others_both_ways() -> None:
    grudge = isolate("n2", NODES)
    assert hears(grudge, "n2") == {"n2"}
    assert all(hears(grudge, n) == set(NODES) - {"n2"} for n in NODES if n != "n2")


@pytest.mark.parametrize("seed", SEEDS)
def test_halves_are_a_minority_and_a_majority_that_cannot_hear_each_other(seed: int) -> None:
    grudge = halves(NODES, random.Random(seed))
    sides = {frozenset(hears(grudge, n)) for n in NODES}
    assert sorted(len(s) for s in sides) == [2, 3], f"seed {seed}"
    assert frozenset().union(*sides) == frozenset(NODES)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_majorities_ring_gives_each_node_its_own_majority(seed: int) -> None:
    grudge = majorities_ring(NODES, random.Random(seed))
    seen = [frozenset(hears(grudge, n)) for n in NODES]
    assert all(len(s) == 3 for s in seen), f"seed {seed}: {seen}"
    assert len(set(seen)) == 5, f"seed {seed}: two nodes see the same majority"
    for node in NODES:  # symmetric: a cut between two nodes cuts both ways
        assert all(node in grudge[other] for other in grudge[node])


@pytest.mark.parametrize("seed", SEEDS)
def test_a_bridge_node_hears_both_halves_that_cannot_hear_each_other(seed: int) -> None:
    grudge = bridge(NODES, random.Random(seed))
    [middle] = [n for n in NODES if hears(grudge, n) == set(NODES)]
    others = [n for n in NODES if n != middle]
    assert all(len(hears(grudge, n)) == 3 for n in others), f"seed {seed}"


def test_one_way_only_the_victim_drops() -> None:
    assert one_way("n3", NODES) == {"n3": frozenset({"n1", "n2", "n4", "n5"})}


def test_isolate_leader_isolates_the_leader_or_a_random_node_without_one() -> None:
    assert hears(grudge_for("isolate-leader", NODES, "n4", random.Random(1)), "n4") == {"n4"}
    grudge = grudge_for("isolate-leader", NODES, None, random.Random(1))
    assert sum(1 for n in NODES if hears(grudge, n) == {n}) == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_targets(seed: int) -> None:
    rng = random.Random(seed)
    assert pick("leader", NODES, "n3", rng) == ["n3"]
    minority = pick("minority", NODES, "n3", rng)
    assert len(minority) == 2 and "n3" in minority, f"seed {seed}"
    majority = pick("majority", NODES, "n3", rng)
    assert len(majority) == 3 and "n3" in majority
    assert pick("followers", NODES, "n3", rng) == ["n1", "n2", "n4", "n5"]
    [follower] = pick("follower", NODES, "n3", rng)
    assert follower in NODES and follower != "n3", f"seed {seed}"
    assert pick("follower", ["n3"], "n3", rng) == []
    assert pick("all", NODES, None, rng) == NODES
    with pytest.raises(ValueError, match="unknown target"):
        pick("nobody", NODES, None, rng)


def test_a_list_schedule_runs_its_steps_in_time_order() -> None:
    gen = Steps([StepSpec(3, "kill", "leader"), StepSpec(9, "restart")])
    ctx = Context(random.Random(1), [Worker("nemesis", "nemesis")])
    worker = ctx.workers[0]
    seen = []
    for tenth in range(120):
        ctx.time = tenth / 10
        found = gen.op(ctx, worker)
        if isinstance(found, Invocation):
            seen.append((ctx.time, found.f, found.value))
        elif found is None:
            break
    assert seen == [(3.0, "kill", "leader"), (9.0, "restart", None)]


def test_a_list_schedule_out_of_time_order_is_refused_not_sorted() -> None:
    steps = [{"at": 1, "f": "kill", "value": "leader"}, {"at": 4, "f": "restart"},
             {"at": 2, "f": "kill"}]  # fmt: skip
    with pytest.raises(SpecError, match=r"steps\[2\]\.at: 2 s comes before the step above it"):
        parse({"nemesis": {"faults": ["kill"], "schedule": {"kind": "list", "steps": steps}}})
    same_time = [{"at": 1, "f": "kill", "value": "leader"}, {"at": 1, "f": "restart"}]
    spec = parse({"nemesis": {"faults": ["kill"], "schedule": {"kind": "list",
                                                               "steps": same_time}}})
    assert [s.f for s in spec.nemesis.schedule.steps] == ["kill", "restart"]


def test_a_list_step_the_nemesis_cannot_do_is_refused() -> None:
    steps = [{"at": 1, "f": "partition", "value": "halves"}]
    with pytest.raises(SpecError, match=r"steps\[0\]\.f: expected one of kill, restart"):
        parse({"nemesis": {"faults": ["kill"], "schedule": {"kind": "list", "steps": steps}}})


@pytest.mark.parametrize("seed", range(5))
def test_a_bag_draws_every_choice_once_before_any_again(seed: int) -> None:
    bag, rng = Bag(["leader", "all", "random"]), random.Random(seed)
    for _ in range(3):
        assert sorted(bag.draw(rng) for _ in range(3)) == ["all", "leader", "random"], seed
    kill = make_nemesis(["kill"], {"kill": {"targets": ["leader", "all"]}}, random.Random(seed))
    assert sorted(str(kill.draw(rng).value) for _ in range(2)) == ["all", "leader"], seed


def test_a_random_schedule_repeats_with_its_seed() -> None:
    def faults(seed: int) -> list[tuple[float, str, object]]:
        nemesis = make_nemesis(["kill", "pause", "partition"], {}, random.Random(seed))
        gen = random_mix(nemesis, 2.0, 3.0)
        ctx = Context(random.Random(seed), [Worker("nemesis", "nemesis")])
        out = []
        for tenth in range(600):
            ctx.time = tenth / 10
            found = gen.op(ctx, ctx.workers[0])
            if isinstance(found, Invocation):
                out.append((ctx.time, found.f, found.value))
        return out

    first = faults(5)
    assert first == faults(5)
    assert {f for _, f, _ in first} >= {"heal"} and len({f for _, f, _ in first}) >= 3
    assert first != faults(6)


def test_nemesis_specs_are_checked() -> None:
    spec = parse({"nemesis": {"faults": ["partition", "pause"],
                              "partition": {"kinds": ["halves"]},
                              "schedule": {"kind": "list", "steps": [
                                  {"at": 2, "f": "partition", "value": "halves"},
                                  {"at": 5, "f": "heal"}]}}})  # fmt: skip
    assert [s.f for s in spec.nemesis.schedule.steps] == ["partition", "heal"]
    with pytest.raises(SpecError, match=r"steps\[0\]: needs 'at'"):
        parse({"nemesis": {"faults": ["kill"], "schedule": {"kind": "list", "steps": [{}]}}})
    with pytest.raises(ValueError, match="unknown kind 'split'"):
        make_nemesis(["partition"], {"partition": {"kinds": ["split"]}}, random.Random(1))


class Throttled:
    """A backend in memory with the `Throttle` and `Pausing` capabilities: n1 leads."""

    def __init__(self, names: Sequence[str]) -> None:
        self.nodes = [NodeSpec(n, f"10.0.0.{i}", 2379, 2380, f"/data/{n}")
                      for i, n in enumerate(names, 1)]  # fmt: skip
        self.cpus: dict[str, float] = {}
        self.paused: set[str] = set()
        self.system = self
        self.healed: list[str] = []

    name = "throttled"
    libc_clock = True

    async def leader(self, nodes: Sequence[NodeSpec], timeout: float = 1.0) -> str | None:
        return "n1"

    def throttle(self, name: str, cpus: float) -> None:
        self.cpus[name] = cpus

    def unthrottle(self, name: str) -> None:
        del self.cpus[name]
        self.healed.append(f"unthrottle {name}")

    def pause(self, name: str) -> None:
        self.paused.add(name)

    def resume(self, name: str) -> None:
        self.paused.discard(name)
        self.healed.append(f"resume {name}")


@pytest.mark.parametrize("seed", SEEDS)
def test_slow_starves_one_follower_and_its_heal_gives_the_cpu_back(seed: int) -> None:
    cluster = Throttled(NODES)
    nemesis = make_nemesis(["slow"], {"slow": {"cpus": 0.05}}, random.Random(seed))
    asyncio.run(nemesis.setup(cluster))  # type: ignore[arg-type]
    op = nemesis.draw(random.Random(seed))
    assert op == FaultOp("slow", {"target": "follower", "cpus": 0.05})
    done = asyncio.run(nemesis.invoke(cluster, op))  # type: ignore[arg-type]
    [slowed] = done.value["nodes"]
    assert done.error is None and slowed != "n1", f"seed {seed}"
    assert done.value == {"target": "follower", "nodes": [slowed], "leader": "n1", "cpus": 0.05}
    assert cluster.cpus == {slowed: 0.05} and nemesis.in_force() == [f"{slowed} slowed"]
    again = asyncio.run(nemesis.invoke(cluster, FaultOp("slow", "followers")))  # type: ignore[arg-type]
    assert sorted(again.value["nodes"]) == sorted(set(NODES) - {"n1", slowed})
    healed = asyncio.run(nemesis.invoke(cluster, nemesis.recovery()))  # type: ignore[arg-type]
    assert healed.value == {"nodes": NODES[1:]} and cluster.cpus == {}
    assert nemesis.in_force() == []


def test_a_heal_gives_paused_and_slowed_nodes_their_cpu_back_together() -> None:
    cluster = Throttled(NODES)
    nemesis = Composite([Slow(rng=random.Random(1)), Pause(targets=["all"])])
    asyncio.run(nemesis.invoke(cluster, FaultOp("slow", {"target": "n2", "cpus": 0.2})))  # type: ignore[arg-type]
    asyncio.run(nemesis.invoke(cluster, FaultOp("pause", "all")))  # type: ignore[arg-type]
    assert cluster.cpus == {"n2": 0.2} and cluster.paused == set(NODES)
    healed = asyncio.run(nemesis.invoke(cluster, FaultOp("heal")))  # type: ignore[arg-type]
    assert healed.value == {"slow": ["n2"], "pause": NODES}
    assert cluster.cpus == {} and cluster.paused == set()


def test_slow_options_are_checked() -> None:
    spec = parse({"nemesis": {"faults": ["slow"], "slow": {"targets": ["follower", "leader"],
                                                          "cpus": 0.2}}})  # fmt: skip
    assert spec.nemesis.options == {"slow": {"targets": ["follower", "leader"], "cpus": 0.2}}
    for cpus in (0, 0.001, 2, "fast", True):
        with pytest.raises(ValueError, match=r"nemesis\.slow\.cpus: expected a share of one CPU"):
            make_nemesis(["slow"], {"slow": {"cpus": cpus}}, random.Random(1))
    with pytest.raises(ValueError, match="unknown target 'slowest'"):
        make_nemesis(["slow"], {"slow": {"targets": ["slowest"]}}, random.Random(1))
    with pytest.raises(ValueError, match="expected a target or"):
        asyncio.run(Slow().invoke(Throttled(NODES), FaultOp("slow", 3)))  # type: ignore[arg-type]
