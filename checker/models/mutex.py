"""Knossos's mutex: acquire and release one lock; it starts free."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.history import HistoryError, Operation
from checker.models.base import INVALID, key_prefix, one_of


@dataclass(frozen=True)
class Mutex:
    initial: Any = False
    name: str = "mutex"

    def init(self) -> Hashable:
        return bool(self.initial)

    def prepare(self, op: Operation) -> Hashable | None:
        if op.f not in ("acquire", "release"):
            raise HistoryError(
                f"model mutex has no operation {op.f!r}; it knows acquire, release",
                line=op.line,
            )
        return None if op.outcome == "fail" else (op.f,)

    def step(self, state: Any, call: Any) -> Any:
        if call[0] == "acquire":
            return True if not state else INVALID
        return False if state else INVALID

    def read_only(self, call: Any) -> bool:
        return False

    def describe_call(self, call: Any) -> str:
        return call[0]

    def describe_state(self, state: Any) -> str:
        return "held" if state else "free"

    def explain(self, call: Any, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        return f"{key_prefix(key)}{call[0]} succeeded, but the lock could only be {could} then"

    def initial_states(self, calls: Sequence[Any]) -> list[Any] | None:
        return [False, True]


def mutex(initial: Any = False) -> Mutex:
    return Mutex(initial)
