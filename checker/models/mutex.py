"""Knossos's mutex: acquire and release one lock; it starts free."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from checker.history import HistoryError, Operation
from checker.models.base import INVALID, key_prefix, one_of


class Acquire(NamedTuple):
    kind: Literal["acquire"] = "acquire"


class Release(NamedTuple):
    kind: Literal["release"] = "release"


MutexCall = Acquire | Release


@dataclass(frozen=True)
class Mutex:
    initial: Any = False
    name: str = "mutex"

    def init(self) -> Hashable:
        return bool(self.initial)

    def prepare(self, op: Operation) -> MutexCall | None:
        if op.f not in ("acquire", "release"):
            raise HistoryError(
                f"model mutex has no operation {op.f!r}; it knows acquire, release",
                line=op.line,
            )
        if op.outcome == "fail":
            return None
        return Acquire() if op.f == "acquire" else Release()

    def step(self, state: Any, call: MutexCall) -> Any:
        if call.kind == "acquire":
            return True if not state else INVALID
        return False if state else INVALID

    def read_only(self, call: MutexCall) -> bool:
        return False

    def describe_call(self, call: MutexCall) -> str:
        return call.kind

    def describe_state(self, state: Any) -> str:
        return "held" if state else "free"

    def explain(self, call: MutexCall, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        return f"{key_prefix(key)}{call.kind} succeeded, but the lock could only be {could} then"

    def initial_states(self, calls: Sequence[MutexCall]) -> list[Any] | None:
        return [False, True]


def mutex(initial: Any = False) -> Mutex:
    return Mutex(initial)
