"""Composed faults aimed where Raft bugs hide (Jepsen's nemesis package of composed
faults): each scenario is a few stages played during one fault window, each stage
seeing what the one before did to the cluster (who leads now).

- `lagging-minority`: cut a random minority (not the leader) off, so the majority
  commits without it; then move the cut: the lagging minority with just enough
  up-to-date nodes for a majority, against the leader and the rest, so that an election
  is won in a majority most of whose nodes are behind.
- `partition-then-kill`: isolate the leader; then kill the leader the majority elected
  (two leader changes, one of them by a crash).
- `leader-churn`: isolate the current leader, again at each stage (`churn_steps`, 4): a
  new election each time, and the node cut off before comes back behind.
- `deposed-leader`: pause the leader and cut it off, so that the others elect a new one
  while its clock stands still; then resume it with only the new leader cut off from
  it: it wakes up believing it still leads, among followers of a later term that it
  can reach (a GC pause plus a partition, Jepsen's classic). A store that checks terms
  tells it at once; one that answers a deposed leader lets it go on.

A stage aims at the leader the side not cut off agrees on, waiting for it up to
`leader_wait_s` (2 s: an election after the stage before may still be going on), and
at a random node if there is none by then. The stages are `scenario` (value: its
name; the first stage) and `scenario-step` ({scenario, step}); `heal-scenario`
restarts the nodes killed and flushes the cut. The schedule (harness/schedule.py)
spaces the stages evenly over the fault window (`follow_ups`). Partitions use their
own chain (`splitbrain-scenario`), so they and the `partition` family never flush each
other's rules.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.capabilities import Members, Network, Pausing, Signals, StartStop
from cluster.node import NodeSpec
from nemesis.core import (
    Bag,
    FaultOp,
    FaultResult,
    chain_rules,
    flush,
    require,
    run_in_networks,
    unknown,
)
from nemesis.partition import Grudge, complete, isolate

CHAIN = "splitbrain-scenario"
SCENARIOS = ("lagging-minority", "partition-then-kill", "leader-churn", "deposed-leader")


def lagging_minority(
    nodes: Sequence[str], leader: str | None, rng: random.Random
) -> tuple[list[str], list[str]]:
    """A random minority without the leader, and the rest."""
    others = [n for n in nodes if n != leader]
    rng.shuffle(others)
    size = max((len(nodes) - 1) // 2, 1)
    behind = sorted(others[:size])
    return behind, [n for n in nodes if n not in behind]


def lagging_wins(
    behind: Sequence[str], ahead: Sequence[str], leader: str | None, rng: random.Random
) -> Grudge:
    """The lagging nodes plus just enough up-to-date ones for a majority, against the
    leader and the other up-to-date nodes."""
    quorum = (len(behind) + len(ahead)) // 2 + 1
    fresh = [n for n in ahead if n != leader]
    rng.shuffle(fresh)
    joined = list(behind) + fresh[: max(quorum - len(behind), 0)]
    cut = [n for n in ahead if n not in joined]
    return complete(joined, cut)


@dataclass
class Scenarios:
    """`scenario` (value: a name), `scenario-step` and `heal-scenario`."""

    scenarios: Sequence[str] = SCENARIOS
    churn_steps: int = 4
    leader_wait_s: float = 2.0  # how long a stage waits for the leader it aims at
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    needs: tuple[type, ...] = field(init=False)  # Pausing only with deposed-leader
    name: str = "scenario"
    heal_rank: int = 0
    fs: frozenset[str] = frozenset({"scenario", "scenario-step", "heal-scenario"})
    _grudge: Grudge = field(default_factory=dict)
    _killed: set[str] = field(default_factory=set)
    _paused: set[str] = field(default_factory=set)
    _behind: list[str] = field(default_factory=list)
    _ahead: list[str] = field(default_factory=list)
    _bag: Bag[str] = field(init=False)

    def __post_init__(self) -> None:
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise ValueError(f"scenario: unknown {s!r}; use one of {', '.join(SCENARIOS)}")
        if not self.scenarios:
            raise ValueError("scenario: give at least one of " + ", ".join(SCENARIOS))
        if not isinstance(self.churn_steps, int) or self.churn_steps < 1:
            raise ValueError(f"scenario.churn_steps: expected a whole number >= 1, "
                             f"got {self.churn_steps!r}")
        self._bag = Bag(self.scenarios)
        pausing = (Pausing,) if "deposed-leader" in self.scenarios else ()
        self.needs = (Network, Signals, StartStop, *pausing)

    async def setup(self, cluster: Members) -> None:
        require(cluster, self.needs, self.name)
        await run_in_networks(cluster, chain_rules(CHAIN, []), "set up scenarios")

    def draw(self, rng: random.Random) -> FaultOp:
        return FaultOp("scenario", self._bag.draw(rng))

    def recovery(self) -> FaultOp:
        return FaultOp("heal-scenario")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        if op.f != "scenario":
            return []
        steps = self.churn_steps if op.value == "leader-churn" else 2
        return [FaultOp("scenario-step", {"scenario": op.value, "step": i})
                for i in range(1, steps)]

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f == "heal-scenario":
            return FaultResult(await self.teardown(cluster))
        if op.f == "scenario":
            return await self._stage(cluster, str(op.value), 0)
        if op.f == "scenario-step":
            value = op.value if isinstance(op.value, dict) else {}
            return await self._stage(cluster, str(value.get("scenario")), int(value.get("step", 1)))
        raise unknown(self.name, op)

    async def _stage(self, cluster: Members, scenario: str, step: int) -> FaultResult:
        names = [n.name for n in cluster.nodes]
        # The leader as the nodes that can still elect one see it: the side not cut off.
        reachable = [n for n in cluster.nodes if n.name not in self._killed
                     and n.name not in self._cut_off()]
        leader = await self._leader(cluster, reachable or cluster.nodes)
        value: dict[str, Any] = {"scenario": scenario, "step": step, "leader": leader}
        if scenario == "lagging-minority":
            if step == 0:
                self._behind, self._ahead = lagging_minority(names, leader, self.rng)
                grudge = complete(self._behind, self._ahead)
            else:
                grudge = lagging_wins(self._behind, self._ahead, leader, self.rng)
                value["behind"] = self._behind
            value["down"] = await self._cut(cluster, grudge)
        elif scenario == "deposed-leader":
            if step == 0:
                target = leader if leader in names else self.rng.choice(names)
                value["down"] = await self._cut(cluster, isolate(target, names))
                await asyncio.to_thread(self._pause, cluster, target)
                value["paused"] = target
            else:
                old = sorted(self._paused)
                new = leader if leader not in old else None
                value["down"] = await self._cut(
                    cluster, complete(old, [new]) if new is not None else {})
                await asyncio.to_thread(self._resume, cluster)
                value["resumed"] = old
        elif scenario == "leader-churn" or (scenario == "partition-then-kill" and step == 0):
            target = leader if leader in names else self.rng.choice(names)
            value["down"] = await self._cut(cluster, isolate(target, names))
        elif scenario == "partition-then-kill":
            target = leader if leader in names else self.rng.choice(
                [n.name for n in reachable] or names)
            await asyncio.to_thread(self._kill, cluster, target)
            value["killed"] = target
        else:
            return FaultResult(value, f"unknown scenario {scenario!r}")
        value["grudge"] = {n: sorted(g) for n, g in sorted(self._grudge.items())}
        return FaultResult(value)

    async def _leader(self, cluster: Members, nodes: list[NodeSpec]) -> str | None:
        """The leader `nodes` agree on, waiting up to `leader_wait_s` for one (an
        election after the stage before may still be going on); None if none by then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.leader_wait_s
        while True:
            leader = await cluster.system.leader(nodes)
            if leader is not None or loop.time() >= deadline:
                return leader
            await asyncio.sleep(0.1)

    def _cut_off(self) -> set[str]:
        """The nodes on the smaller side of the cut in force (none when there is none)."""
        if not self._grudge:
            return set()
        deaf = {n for n, g in self._grudge.items() if g}
        largest = max(len(g) for g in self._grudge.values())
        return {n for n in deaf if len(self._grudge[n]) == largest}

    def _pause(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Pausing)
        cluster.pause(name)
        self._paused.add(name)

    def _resume(self, cluster: Members) -> None:
        if not self._paused:  # a cluster that cannot pause has nothing paused
            return
        assert isinstance(cluster, Pausing)
        for name in sorted(self._paused):
            cluster.resume(name)
        self._paused.clear()

    def _kill(self, cluster: Members, name: str) -> None:
        assert isinstance(cluster, Signals)
        cluster.kill(name, "SIGKILL")
        self._killed.add(name)

    async def _cut(self, cluster: Members, grudge: Grudge) -> list[str]:
        """Replace the cut in force by `grudge`, in one script per node."""
        address = {n.name: n.host for n in cluster.nodes}

        def rules(spec: NodeSpec) -> str:
            drops = sorted(grudge.get(spec.name, ()))
            return flush(CHAIN) + " ; " + chain_rules(
                CHAIN, [f"-s {address[peer]} -j DROP" for peer in drops])

        down = await run_in_networks(cluster, rules, "move the partition")
        self._grudge = {n: g for n, g in grudge.items() if g}
        return down

    async def teardown(self, cluster: Members) -> Any:
        killed = sorted(self._killed)

        def start(name: str) -> None:
            assert isinstance(cluster, StartStop)
            cluster.start(name)

        await asyncio.gather(*(asyncio.to_thread(start, n) for n in killed))
        self._killed.clear()
        paused = sorted(self._paused)
        await asyncio.to_thread(self._resume, cluster)
        healed = sorted(self._grudge)
        await run_in_networks(cluster, flush(CHAIN), "heal the network")
        self._grudge = {}
        return {"restarted": killed, "resumed": paused, "healed": healed}

    def in_force(self) -> list[str]:
        return [f"{n} deaf to {','.join(sorted(g))}" for n, g in sorted(self._grudge.items())] + [
            f"{n} killed" for n in sorted(self._killed)] + [
            f"{n} paused" for n in sorted(self._paused)]
