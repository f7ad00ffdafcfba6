"""Knossos's `register` and `cas-register`: one value; read, write, compare-and-set.

As in Knossos, an ok read whose value is nil (or unobserved) says nothing, so it
matches any state.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.history import UNOBSERVED, HistoryError, Operation
from checker.models.base import INVALID, NOTHING, OTHER, freeze, key_prefix, one_of, show


def cas_pair(op: Operation) -> tuple[Hashable, Hashable]:
    value = op.value
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise HistoryError(f"cas needs a value [old new], got {value!r}", line=op.line)
    return freeze(value[0]), freeze(value[1])


@dataclass(frozen=True)
class CasRegister:
    initial: Any = None
    name: str = "cas-register"
    allows_cas: bool = True

    def init(self) -> Hashable:
        return freeze(self.initial)

    def prepare(self, op: Operation) -> Hashable | None:
        if op.outcome == "fail":
            return None
        if op.f == "read":
            if op.outcome != "ok" or op.value is None or op.value is UNOBSERVED:
                return None
            return ("read", freeze(op.value))
        if op.f == "write":
            return ("write", freeze(op.value))
        if op.f == "cas" and self.allows_cas:
            return ("cas", *cas_pair(op))
        known = "read, write, cas" if self.allows_cas else "read, write"
        raise HistoryError(f"model {self.name} has no operation {op.f!r}; it knows {known}",
                           line=op.line)

    def step(self, state: Any, call: Any) -> Any:
        kind = call[0]
        if kind == "read":
            return state if state == call[1] else INVALID
        if kind == "write":
            return call[1]
        return call[2] if state == call[1] else INVALID

    def read_only(self, call: Any) -> bool:
        return call[0] == "read"

    def describe_call(self, call: Any) -> str:
        if call[0] == "read":
            return f"read {show(call[1])}"
        if call[0] == "write":
            return f"write {show(call[1])}"
        return f"cas {show(call[1])}→{show(call[2])}"

    def describe_state(self, state: Any) -> str:
        return show(state)

    def explain(self, call: Any, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        if call[0] == "read":
            what = f"read returned {show(call[1])}"
        else:
            what = f"cas from {show(call[1])} to {show(call[2])} succeeded"
        return f"{key_prefix(key)}{what}, but the register could only be {could} then"

    def dead(self, state: Any, call: Any) -> bool:
        """A read of v (a cas from v) fits no state but v, until something writes v."""
        return call[0] != "write" and state != call[1]

    def destroys(self, call: Any, needy: Any) -> bool:
        return call[0] != "read" and call[-1] != needy[1]

    def needs(self, call: Any) -> tuple[Any, ...]:
        return (call[1],) if call[0] in ("read", "cas") else ()

    def provides(self, call: Any) -> tuple[Any, ...]:
        return (call[-1],) if call[0] in ("write", "cas") else ()

    def observes(self, call: Any) -> tuple[Any, ...]:
        return () if call[0] == "write" else (call[1],)

    def with_written(self, call: Any, value: Any) -> Any:
        if call[0] == "write":
            return ("write", value)
        return ("cas", call[1], value) if call[0] == "cas" else None

    def register_effect(self, call: Any) -> tuple[Any, Any] | None:
        if call[0] == "read":
            return call[1], NOTHING
        if call[0] == "write":
            return NOTHING, call[1]
        return call[1], call[2]

    def initial_states(self, calls: Sequence[Any]) -> list[Any] | None:
        values: set[Any] = {self.init()}
        for call in calls:
            values.update(call[1:])
        return [*values, OTHER]


def register(initial: Any = None) -> CasRegister:
    return CasRegister(initial, name="register", allows_cas=False)


def cas_register(initial: Any = None) -> CasRegister:
    return CasRegister(initial)
