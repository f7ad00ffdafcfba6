"""Fault families: how to start and end faults (Jepsen's setup / invoke / teardown).

A family handles a few operations (`fs`): one that starts a fault and one that ends it
(Jepsen's :start / :stop). It knows nothing of generators or of when: the harness's
schedule (harness/schedule.py) asks `draw(rng)` for the next fault to start and
`recovery()` for the operation that ends them, and the interpreter hands each operation
to `invoke` on the nemesis worker; the recorder writes it into the history as a
`process: "nemesis"` op, with what `invoke` returned as the completion's value.
`teardown` ends every fault in force, whatever the schedule did; the runner calls it at
the end of every run, also an interrupted one.

A family names the backend capabilities it needs (`needs`, cluster.capabilities);
`setup` refuses, naming the missing one, before the run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from cluster.capabilities import Members, Network, missing
from cluster.node import NodeDown, NodeSpec


class FaultRefused(RuntimeError):
    """This fault cannot be done here (the backend or the kernel lacks what it needs)."""


class HealFailed(RuntimeError):
    """A fault could not be healed; the message says what was and was not."""


@dataclass(frozen=True, slots=True)
class FaultOp:
    """An operation of a fault family: `f` (partition, heal-partition, ...) and its value."""

    f: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class FaultResult:
    """What an operation did (the history's completion value); `error`: it did not, or
    only in part."""

    value: Any = None
    error: str | None = None


class Fault(Protocol):
    name: str
    fs: frozenset[str]
    heal_rank: int  # healing several families: lower first (bring nodes back, then networks)
    needs: tuple[type, ...]  # backend capabilities (cluster.capabilities), checked before the run

    async def setup(self, cluster: Members) -> None:
        """Before the workload: check the fault can be done here (FaultRefused if not)
        and set up what it needs."""
        ...

    def draw(self, rng: random.Random) -> FaultOp:
        """A fault to start, one of those configured, chosen with `rng`."""
        ...

    def recovery(self) -> FaultOp:
        """The operation that ends the faults in force."""
        ...

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        """The later stages of a composed fault started by `op` (nemesis/scenarios.py),
        spaced evenly over its fault window by the schedule; [] for a single fault."""
        ...

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult: ...

    async def teardown(self, cluster: Members) -> Any:
        """End every fault in force; what was healed (for the history)."""
        ...

    def in_force(self) -> list[str]:
        """The faults in force now, for the progress display."""
        ...


def require(cluster: object, needs: Sequence[type], fault: str) -> None:
    """FaultRefused naming the capabilities of `needs` the backend lacks."""
    lacking = missing(cluster, needs)
    if lacking:
        raise FaultRefused(
            f"{fault} needs what the {type(cluster).__name__} backend cannot do: "
            f"{', '.join(lacking)} (docs/nemesis.md lists what each backend can)"
        )


def unknown(family: str, op: FaultOp) -> ValueError:
    return ValueError(f"the {family} nemesis does not do {op.f!r}")


class NoNemesis:
    """No faults at all."""

    name = "none"
    fs: frozenset[str] = frozenset()
    heal_rank = 0
    needs: ClassVar[tuple[type, ...]] = ()

    async def setup(self, cluster: Members) -> None:
        return None

    def draw(self, rng: random.Random) -> FaultOp:
        raise RuntimeError("the none nemesis has no faults to schedule")

    def recovery(self) -> FaultOp:
        raise RuntimeError("the none nemesis has no faults to schedule")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        raise unknown(self.name, op)

    async def teardown(self, cluster: Members) -> Any:
        return None

    def in_force(self) -> list[str]:
        return []


TARGETS = ("leader", "random", "minority", "majority", "all", "followers", "follower")


def pick(target: str, names: Sequence[str], leader: str | None, rng: random.Random) -> list[str]:
    """The nodes a target selector names, given the current leader (None if unknown).

    `leader` falls back to a random node when no leader is agreed on; `follower` is one
    random node other than the leader (none when only the leader is left); `minority` is
    a random minority that includes the leader when there is one.
    """
    names = list(names)
    if target == "leader":
        return [leader] if leader in names else [rng.choice(names)]
    if target == "random":
        return [rng.choice(names)]
    if target == "all":
        return names
    if target == "followers":
        return [n for n in names if n != leader]
    if target == "follower":
        others = [n for n in names if n != leader]
        return [rng.choice(others)] if others else []
    if target in ("minority", "majority"):
        size = (len(names) - 1) // 2 if target == "minority" else len(names) // 2 + 1
        size = max(size, 1)
        others = [n for n in names if n != leader]
        rng.shuffle(others)
        chosen = ([leader] if leader in names else []) + others
        return sorted(chosen[:size])
    if target in names:
        return [target]
    raise ValueError(f"unknown target {target!r}: use one of {TARGETS} or a node name")


T = TypeVar("T")


class Bag(Generic[T]):
    """Draws each of `items` once, in a shuffled order, before any comes up again: in a
    short run every configured choice (a family, a target, a kind) is played, where
    independent draws would leave some out (Jepsen's nemesis package cycles the same way)."""

    def __init__(self, items: Sequence[T]) -> None:
        self.items = list(items)
        self._left: list[T] = []

    def draw(self, rng: random.Random) -> T:
        if not self._left:
            self._left = list(self.items)
            rng.shuffle(self._left)
        return self._left.pop()


class Composite:
    """Several fault families: each fault is one of them, drawn from a shuffled bag so that
    every family comes up once before any comes up again; recovery heals all."""

    name = "composite"
    heal_rank = 0

    def __init__(self, members: Sequence[Fault]) -> None:
        self.members = list(members)
        self._bag: Bag[Fault] = Bag(self.members)
        self.fs = frozenset({"heal"}).union(*(m.fs for m in self.members))
        self.needs = tuple(dict.fromkeys(need for m in self.members for need in m.needs))

    async def setup(self, cluster: Members) -> None:
        for member in self.members:
            await member.setup(cluster)

    def draw(self, rng: random.Random) -> FaultOp:
        return self._bag.draw(rng).draw(rng)

    def recovery(self) -> FaultOp:
        return FaultOp("heal")

    def follow_ups(self, op: FaultOp) -> list[FaultOp]:
        for member in self.members:
            if op.f in member.fs:
                return member.follow_ups(op)
        return []

    async def invoke(self, cluster: Members, op: FaultOp) -> FaultResult:
        if op.f == "heal":
            return FaultResult(await self.teardown(cluster))
        for member in self.members:
            if op.f in member.fs:
                return await member.invoke(cluster, op)
        raise unknown(self.name, op)

    async def teardown(self, cluster: Members) -> Any:
        """Every family, nodes first (restart, resume) and networks after, so that rules
        are flushed in nodes that run; one family failing does not stop the others."""
        healed: dict[str, Any] = {}
        failed: list[BaseException] = []
        for member in sorted(self.members, key=lambda m: m.heal_rank):
            try:
                healed[member.name] = await member.teardown(cluster)
            except Exception as e:
                healed[member.name] = f"failed: {e}"
                failed.append(e)
        if failed:
            raise HealFailed(f"healing failed: {healed}") from failed[0]
        return healed

    def in_force(self) -> list[str]:
        return [fault for m in self.members for fault in m.in_force()]


async def run_in_networks(
    cluster: Members,
    script: str | Callable[[NodeSpec], str | None],
    what: str,
    nodes: Sequence[NodeSpec] | None = None,
) -> list[str]:
    """A shell script in the network namespace of every node at once (or `script(node)`;
    None: nothing there), through the backend's `Network` capability. Nodes whose network
    is gone are skipped: their names are returned. FaultRefused, naming the node and its
    output, if the script fails in one."""
    require(cluster, [Network], what)
    assert isinstance(cluster, Network)
    network: Network = cluster

    async def one(spec: NodeSpec) -> str | None:
        text = script(spec) if callable(script) else script
        if not text:
            return None
        try:
            code, output = await asyncio.to_thread(network.net_exec, spec.name, ["sh", "-c", text])
        except NodeDown:
            return spec.name
        if code != 0:
            raise FaultRefused(f"cannot {what} on {spec.name}: {output.strip()}")
        return None

    found = await asyncio.gather(*(one(s) for s in (cluster.nodes if nodes is None else nodes)))
    return [name for name in found if name is not None]


def chain_rules(chain: str, rules: list[str]) -> str:
    """A script that makes sure `chain` exists and INPUT jumps to it, then adds `rules`."""
    ensure = (
        f"(iptables -w -N {chain} 2>/dev/null || true) && "
        f"(iptables -w -C INPUT -j {chain} 2>/dev/null || iptables -w -I INPUT -j {chain})"
    )
    return " && ".join([ensure, *(f"iptables -w -A {chain} {rule}" for rule in rules)])


def flush(chain: str) -> str:
    return f"iptables -w -F {chain} 2>/dev/null || true"
