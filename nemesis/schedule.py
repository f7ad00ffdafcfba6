"""When faults start and end: schedules as generators for the nemesis worker."""

from __future__ import annotations

from harness.generator import Cycle, Generator, Once, Seq, Sleep
from nemesis.core import Nemesis


def interval(nemesis: Nemesis, fault_s: float, heal_s: float) -> Generator:
    """Healthy for `heal_s`, then a fault for `fault_s`, then recovery; again and again."""
    return Cycle(
        lambda: Seq([Sleep(heal_s), Once(nemesis.fault), Sleep(fault_s), Once(nemesis.recover())])
    )
