"""Composed faults (nemesis/scenarios.py) as plans and as their schedule, on a recording
backend that keeps each node's rules and state as the Docker one would: what they do
to a real cluster is tests/test_faults.py's (the Docker end-to-end tests)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from cluster.node import NodeSpec
from harness.generator import Context, Worker
from harness.ops import Invocation
from harness.schedule import interval
from nemesis import make_nemesis
from nemesis.core import FaultOp
from nemesis.scenarios import Scenarios, lagging_minority, lagging_wins

NODES = ["n1", "n2", "n3", "n4", "n5"]
SEEDS = range(20)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [3, 5, 7])
def test_the_lagging_minority_then_wins_a_majority_without_the_leader(seed: int, n: int) -> None:
    nodes = [f"n{i}" for i in range(1, n + 1)]
    rng = random.Random(seed)
    leader = rng.choice(nodes)
    behind, ahead = lagging_minority(nodes, leader, rng)
    assert leader in ahead and len(behind) == (n - 1) // 2, f"seed {seed}"
    grudge = lagging_wins(behind, ahead, leader, rng)
    cut = {node for node, g in grudge.items() if len(g) > n // 2}
    joined = set(nodes) - cut
    assert len(joined) == n // 2 + 1, f"seed {seed}: {grudge}"
    assert set(behind) <= joined and leader in cut, f"seed {seed}: {grudge}"
    for node in joined:  # the new majority hears itself and nothing of the cut side
        assert grudge[node] == frozenset(cut), f"seed {seed}"


class Recording:
    """A backend in memory: the leader is the lowest-named node every reachable node
    hears; a kill marks the node down."""

    def __init__(self, names: Sequence[str]) -> None:
        self.nodes = [NodeSpec(n, f"10.0.0.{i}", 2379, 2380, f"/data/{n}")
                      for i, n in enumerate(names, 1)]
        self.rules: dict[str, list[str]] = {n: [] for n in names}
        self.down: set[str] = set()
        self.system = self

    name = "recording"
    libc_clock = True

    async def leader(self, nodes: Sequence[NodeSpec], timeout: float = 1.0) -> str | None:
        up = [n.name for n in nodes if n.name not in self.down]
        return min(up) if up else None

    def net_exec(self, name: str, argv: list[str]) -> tuple[int, str]:
        script = argv[-1]
        if "-F splitbrain-scenario" in script:
            self.rules[name] = []
        self.rules[name] += [p.split(" -j DROP")[0].split("-s ")[-1] for p in script.split(" && ")
                             if "-j DROP" in p]
        return 0, ""

    def delayer(self, name: str, argv: list[str]) -> None:
        raise NotImplementedError

    def kill(self, name: str, signal: str = "SIGKILL") -> None:
        self.down.add(name)

    def start(self, name: str) -> None:
        self.down.discard(name)

    def running(self, name: str) -> bool:
        return name not in self.down


def test_partition_then_kill_kills_the_leader_the_majority_elected() -> None:
    cluster = Recording(NODES)
    nemesis = Scenarios(rng=random.Random(3))
    first = FaultOp("scenario", "partition-then-kill")
    [then] = nemesis.follow_ups(first)
    done = asyncio.run(nemesis.invoke(cluster, first))  # type: ignore[arg-type]
    assert done.value["leader"] == "n1" and cluster.rules["n1"] == [
        "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    done = asyncio.run(nemesis.invoke(cluster, then))  # type: ignore[arg-type]
    assert done.value["killed"] == "n2" and cluster.down == {"n2"}
    healed = asyncio.run(nemesis.invoke(cluster, nemesis.recovery()))  # type: ignore[arg-type]
    assert healed.value == {"restarted": ["n2"], "resumed": [], "healed": NODES}
    assert cluster.down == set() and all(not r for r in cluster.rules.values())
    assert nemesis.in_force() == []


def test_leader_churn_moves_the_cut_to_each_new_leader() -> None:
    cluster = Recording(NODES)
    nemesis = Scenarios(scenarios=["leader-churn"], churn_steps=3, rng=random.Random(1))
    first = FaultOp("scenario", "leader-churn")
    isolated = []
    for op in [first, *nemesis.follow_ups(first)]:
        done = asyncio.run(nemesis.invoke(cluster, op))  # type: ignore[arg-type]
        isolated.append(done.value["leader"])
        assert [n for n, r in cluster.rules.items() if len(r) == 4] == [done.value["leader"]]
    # Each stage isolates the leader the side not cut off elected (the recording backend
    # elects the lowest name): n1 is back with the others when n2 is cut off.
    assert isolated == ["n1", "n2", "n1"]


def test_a_composed_fault_plays_its_stages_over_its_window() -> None:
    nemesis = make_nemesis(["scenario"], {"scenario": {"scenarios": ["leader-churn"]}},
                           random.Random(2))
    gen = interval(nemesis, 4.0, 2.0)
    ctx = Context(random.Random(2), [Worker("nemesis", "nemesis")])
    seen = []
    for tenth in range(130):
        ctx.time = tenth / 10
        found = gen.op(ctx, ctx.workers[0])
        if isinstance(found, Invocation):
            seen.append((ctx.time, found.f))
    # The next healthy spell starts when the nemesis next asks (here, a tick later).
    assert seen[:6] == [(2.0, "scenario"), (3.0, "scenario-step"), (4.0, "scenario-step"),
                        (5.0, "scenario-step"), (6.0, "heal-scenario"), (8.1, "scenario")]


def test_scenario_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown 'split'"):
        make_nemesis(["scenario"], {"scenario": {"scenarios": ["split"]}}, random.Random(0))
    with pytest.raises(ValueError, match="churn_steps"):
        make_nemesis(["scenario"], {"scenario": {"churn_steps": 0}}, random.Random(0))
