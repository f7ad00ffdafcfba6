"""Did the faults take effect? Read from the nemesis operations of a history.

A fault that fails while the run goes on (a pause sent to a node that is down, a kill
that finds no node left) is recorded as the nemesis operation's `info` completion with
an `error` (harness.interpreter). The run's verdict stays what the checkers say, but a
run whose faults did not all take effect must say so: it tested less than its spec
asked for, and a run where none took effect tested the system without faults. These
notes go into results.json `notes`, the CLI's output and the report (docs/harness.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checker.history import NEMESIS, Op
from checker.stats import RECOVERIES

ERROR_CHARS = 300  # of a failure's error, in a note


@dataclass(frozen=True)
class FailedFault:
    f: str
    value: Any
    at_s: float  # when it was invoked, from the start of the history
    error: str


@dataclass
class FaultOutcomes:
    asked: int = 0  # faults started by the schedule (recoveries not counted)
    took_effect: int = 0
    failed: list[FailedFault] = field(default_factory=list)  # in whole or in part
    in_part: int = 0  # of the failed, those that hit some nodes all the same
    unfinished: int = 0  # never completed (the run was cut short while it was done)

    def notes(self, configured: bool = True) -> list[str]:
        """One line for results.json `notes`, or none when every fault took effect
        (`configured`: the spec names faults, so a run without any says so)."""
        if not self.asked and configured:
            return ["0 faults took effect: the schedule started none before the run ended, "
                    "so this run tested the system without faults"]
        if not self.failed:
            return []
        first = self.failed[0]
        value = "" if first.value is None else f" {first.value}"
        example = f"{first.f}{value} at {first.at_s:.1f} s: {first.error}"
        more = f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
        if self.took_effect == 0 and self.in_part == 0:
            return [
                f"0 of {self.asked} faults took effect: the nemesis never injected a fault, "
                f"so this run tested the system without faults; first failure: {example}{more}"
            ]
        part = f" ({self.in_part} in part)" if self.in_part else ""
        return [
            f"{self.took_effect} of {self.asked} faults took effect; "
            f"{len(self.failed)} failed{part}: {example}{more}"
        ]


def fault_outcomes(ops: Iterable[Op], recoveries: frozenset[str] = RECOVERIES) -> FaultOutcomes:
    """Each fault the nemesis was asked for, and whether it took effect (its completion
    carries no error); in one pass over the history. The nemesis is one worker, so its
    operations alternate: a request, then what was done (both `info` as recorded)."""
    outcomes = FaultOutcomes()
    request: Op | None = None
    for op in ops:
        if op.process != NEMESIS:
            continue
        if request is None:
            request = op
            if op.f not in recoveries:
                outcomes.asked += 1
            continue
        asked, request = request, None
        if op.f in recoveries:
            continue
        if op.error is None:
            outcomes.took_effect += 1
            continue
        if isinstance(op.value, Mapping) and op.value.get("nodes"):
            outcomes.in_part += 1  # a node fault that hit some of its nodes (nemesis.nodes)
        at = asked.time if asked.time is not None else op.time
        value = asked.value if isinstance(asked.value, str | int | float) else None
        error = " ".join(str(op.error).split())  # one line, however the error was written
        error = error if len(error) <= ERROR_CHARS else error[:ERROR_CHARS] + "..."
        outcomes.failed.append(FailedFault(op.f, value, (at or 0) / 1e9, error))
    if request is not None and request.f not in recoveries:
        outcomes.unfinished = 1
    return outcomes


def fault_notes(ops: Iterable[Op], configured: bool) -> list[str]:
    return fault_outcomes(ops).notes(configured)
