"""Knossos's `register` and `cas-register`: one value; read, write, compare-and-set.

As in Knossos, an ok read whose value is nil (or unobserved) says nothing, so it
matches any state.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from checker.history import UNOBSERVED, HistoryError, Operation
from checker.models.base import INVALID, NOTHING, OTHER, freeze, key_prefix, one_of, show


class Read(NamedTuple):
    """An ok read of `value`."""

    value: Hashable
    kind: Literal["read"] = "read"  # calls of different kinds never compare equal


class Write(NamedTuple):
    value: Hashable
    kind: Literal["write"] = "write"


class Cas(NamedTuple):
    """A compare-and-set from `old` to `new` that succeeded (or may have)."""

    old: Hashable
    new: Hashable
    kind: Literal["cas"] = "cas"


RegisterCall = Read | Write | Cas


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

    def prepare(self, op: Operation) -> RegisterCall | None:
        if op.outcome == "fail":
            return None
        if op.f == "read":
            if op.outcome != "ok" or op.value is None or op.value is UNOBSERVED:
                return None
            return Read(freeze(op.value))
        if op.f == "write":
            return Write(freeze(op.value))
        if op.f == "cas" and self.allows_cas:
            return Cas(*cas_pair(op))
        known = "read, write, cas" if self.allows_cas else "read, write"
        raise HistoryError(f"model {self.name} has no operation {op.f!r}; it knows {known}",
                           line=op.line)

    def step(self, state: Any, call: RegisterCall) -> Any:
        kind = call.kind
        if kind == "read":
            return state if state == call.value else INVALID
        if kind == "write":
            return call.value
        return call.new if state == call.old else INVALID

    def read_only(self, call: RegisterCall) -> bool:
        return call.kind == "read"

    def describe_call(self, call: RegisterCall) -> str:
        if call.kind == "cas":
            return f"cas {show(call.old)}→{show(call.new)}"
        return f"{call.kind} {show(call.value)}"

    def describe_state(self, state: Any) -> str:
        return show(state)

    def explain(self, call: RegisterCall, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        if call.kind == "cas":
            what = f"cas from {show(call.old)} to {show(call.new)} succeeded"
        else:
            what = f"read returned {show(call.value)}"
        return f"{key_prefix(key)}{what}, but the register could only be {could} then"

    def dead(self, state: Any, call: RegisterCall) -> bool:
        """A read of v (a cas from v) fits no state but v, until something writes v."""
        return call.kind != "write" and state != self.needs(call)[0]

    def destroys(self, call: RegisterCall, needy: RegisterCall) -> bool:
        return call.kind != "read" and self.provides(call)[0] != self.needs(needy)[0]

    def needs(self, call: RegisterCall) -> tuple[Any, ...]:
        kind = call.kind
        if kind == "read":
            return (call.value,)
        return (call.old,) if kind == "cas" else ()

    def provides(self, call: RegisterCall) -> tuple[Any, ...]:
        kind = call.kind
        if kind == "write":
            return (call.value,)
        return (call.new,) if kind == "cas" else ()

    def observes(self, call: RegisterCall) -> tuple[Any, ...]:
        return () if call.kind == "write" else self.needs(call)

    def with_written(self, call: RegisterCall, value: Any) -> RegisterCall | None:
        if call.kind == "write":
            return Write(value)
        return Cas(call.old, value) if call.kind == "cas" else None

    def register_effect(self, call: RegisterCall) -> tuple[Any, Any] | None:
        kind = call.kind
        if kind == "read":
            return call.value, NOTHING
        if kind == "write":
            return NOTHING, call.value
        return call.old, call.new

    def initial_states(self, calls: Sequence[RegisterCall]) -> list[Any] | None:
        values: set[Any] = {self.init()}
        for call in calls:
            values.update(self.needs(call), self.provides(call))
        return [*values, OTHER]


def register(initial: Any = None) -> CasRegister:
    return CasRegister(initial, name="register", allows_cas=False)


def cas_register(initial: Any = None) -> CasRegister:
    return CasRegister(initial)
