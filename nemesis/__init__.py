"""Faults: each family one small class behind `nemesis.core.Fault` (setup / invoke /
teardown); when they happen is the harness's schedule's (harness/schedule.py)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from nemesis.clock import Clock
from nemesis.core import Composite, Fault, NoNemesis
from nemesis.kill import Kill
from nemesis.packets import Delay, Loss
from nemesis.partition import Partition
from nemesis.pause import Pause
from nemesis.scenarios import Scenarios
from nemesis.slow import Slow

NEMESES: dict[str, type] = {
    "none": NoNemesis,
    "kill": Kill,
    "pause": Pause,
    "partition": Partition,
    "loss": Loss,
    "delay": Delay,
    "clock": Clock,
    "scenario": Scenarios,
    "slow": Slow,
}


def make_nemesis(
    faults: Sequence[str], options: Mapping[str, Mapping[str, Any]], rng: random.Random
) -> Fault:
    """One nemesis for the faults named (several: a random one of them at each fault)."""
    members: list[Fault] = []
    for fault in faults:
        cls = NEMESES.get(fault)
        if cls is None:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(NEMESES))}")
        if cls is NoNemesis:
            continue
        try:
            members.append(cls(rng=rng, **dict(options.get(fault, {}))))
        except TypeError as e:
            raise ValueError(
                f"nemesis.{fault}: bad options {dict(options.get(fault, {}))}: {e}"
            ) from None
    if not members:
        return NoNemesis()
    return members[0] if len(members) == 1 else Composite(members)
