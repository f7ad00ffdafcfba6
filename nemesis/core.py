"""The Nemesis protocol: faults as operations the generator schedules like a client's.

A nemesis handles a few operations (`fs`): one that starts a fault and one that ends it
(Jepsen's :start / :stop). The interpreter invokes them on the nemesis worker and the
recorder writes them into the history as `process: "nemesis"` ops, with their targets
in the completion's value. `heal` ends every fault it has in force, whatever the
schedule did; the runner calls it at the end of every run, also an interrupted one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from harness.generator import Context
from harness.ops import Completion, Invocation
from harness.system import Cluster, NodeDown, NodeSpec


class FaultRefused(RuntimeError):
    """This fault cannot be done here (the backend or the kernel lacks what it needs)."""


class HealFailed(RuntimeError):
    """A fault could not be healed; the message says what was and was not."""


class Nemesis(Protocol):
    name: str
    fs: frozenset[str]
    heal_rank: int  # healing several families: lower first (bring nodes back, then networks)

    async def prepare(self, cluster: Cluster) -> None:
        """Before the workload: check the fault can be done here (FaultRefused if not)
        and set up what it needs."""
        ...

    def fault(self, ctx: Context) -> Invocation:
        """The next fault to start (the schedule asks this, with the seeded random source)."""
        ...

    def recover(self) -> Invocation:
        """The operation that ends the faults in force."""
        ...

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion: ...

    async def heal(self, cluster: Cluster) -> Any:
        """End every fault in force; what was healed (for the history)."""
        ...

    def in_force(self) -> list[str]:
        """The faults in force now, for the progress display."""
        ...


class NoNemesis:
    """No faults at all."""

    name = "none"
    fs: frozenset[str] = frozenset()
    heal_rank = 0

    async def prepare(self, cluster: Cluster) -> None:
        return None

    def fault(self, ctx: Context) -> Invocation:
        raise RuntimeError("the none nemesis has no faults to schedule")

    def recover(self) -> Invocation:
        raise RuntimeError("the none nemesis has no faults to schedule")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        return Completion("fail", error=f"the none nemesis does not do {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        return None

    def in_force(self) -> list[str]:
        return []


TARGETS = ("leader", "random", "minority", "majority", "all", "followers")


def pick(target: str, names: Sequence[str], leader: str | None, rng: random.Random) -> list[str]:
    """The nodes a target selector names, given the current leader (None if unknown).

    `leader` falls back to a random node when no leader is agreed on; `minority` is a
    random minority that includes the leader when there is one.
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


class Composite:
    """Several fault families: each fault is one of them, drawn from a shuffled bag so that
    every family comes up once before any comes up again; recovery heals all."""

    name = "composite"
    heal_rank = 0

    def __init__(self, members: Sequence[Nemesis]) -> None:
        self.members = list(members)
        self._bag: list[Nemesis] = []
        self.fs = frozenset({"heal"}).union(*(m.fs for m in self.members))

    async def prepare(self, cluster: Cluster) -> None:
        for member in self.members:
            await member.prepare(cluster)

    def fault(self, ctx: Context) -> Invocation:
        if not self._bag:
            self._bag = list(self.members)
            ctx.rng.shuffle(self._bag)
        return self._bag.pop().fault(ctx)

    def recover(self) -> Invocation:
        return Invocation("heal")

    async def invoke(self, cluster: Cluster, op: Invocation) -> Completion:
        if op.f == "heal":
            return Completion("info", await self.heal(cluster))
        for member in self.members:
            if op.f in member.fs:
                return await member.invoke(cluster, op)
        return Completion("fail", error=f"no nemesis here does {op.f!r}")

    async def heal(self, cluster: Cluster) -> Any:
        """Every family, nodes first (restart, resume) and networks after, so that rules
        are flushed in nodes that run; one family failing does not stop the others."""
        healed: dict[str, Any] = {}
        failed: list[BaseException] = []
        for member in sorted(self.members, key=lambda m: m.heal_rank):
            try:
                healed[member.name] = await member.heal(cluster)
            except Exception as e:
                healed[member.name] = f"failed: {e}"
                failed.append(e)
        if failed:
            raise HealFailed(f"healing failed: {healed}") from failed[0]
        return healed

    def in_force(self) -> list[str]:
        return [fault for m in self.members for fault in m.in_force()]


async def run_in_nodes(
    cluster: Cluster,
    script: str | Callable[[NodeSpec], str | None],
    what: str,
    nodes: Sequence[NodeSpec] | None = None,
) -> list[str]:
    """A shell script in every running node at once (or `script(node)`; None: nothing
    there). Nodes that are down are skipped: their names are returned. FaultRefused,
    naming the node and its output, if the script fails in one."""

    async def one(spec: NodeSpec) -> str | None:
        text = script(spec) if callable(script) else script
        if not text:
            return None
        try:
            code, output = await asyncio.to_thread(cluster.exec, spec.name, ["sh", "-c", text])
        except NotImplementedError as e:
            raise FaultRefused(f"cannot {what}: {e}") from None
        except NodeDown:
            return spec.name
        if code != 0:
            raise FaultRefused(f"cannot {what} on {spec.name}: {output.strip()}")
        return None

    found = await asyncio.gather(*(one(s) for s in (cluster.nodes if nodes is None else nodes)))
    return [name for name in found if name is not None]


def chain_rules(chain: str, rules: list[str]) -> str:
    """A script that makes sure `chain` exists and INPUT jumps to it (a restarted node has
    a new network namespace, without them), then adds `rules` to it."""
    ensure = (
        f"(iptables -w -N {chain} 2>/dev/null || true) && "
        f"(iptables -w -C INPUT -j {chain} 2>/dev/null || iptables -w -I INPUT -j {chain})"
    )
    return " && ".join([ensure, *(f"iptables -w -A {chain} {rule}" for rule in rules)])


def flush(chain: str) -> str:
    return f"iptables -w -F {chain} 2>/dev/null || true"
