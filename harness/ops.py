"""What flows between generators, clients, nemeses and the recorder.

An `Invocation` is what a generator asks a worker to do; a `Completion` is how it
ended. The recorder turns both into history lines (`checker.history.Op`), adding the
index, the process and the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from checker.history import UNOBSERVED

Outcome = Literal["ok", "fail", "info"]


@dataclass(frozen=True, slots=True)
class Invocation:
    f: str
    value: Any = UNOBSERVED
    key: Any = None
    final: bool = False  # a read of the final phase: always from a quorum


@dataclass(frozen=True, slots=True)
class Completion:
    """`ok`: it took effect; `fail`: it surely did not; `info`: nobody knows."""

    type: Outcome
    value: Any = UNOBSERVED
    error: Any = None
