"""A string per key with get, put and append (porcupine's kv model); starts at ""."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from checker.history import UNOBSERVED, HistoryError, Operation
from checker.models.base import INVALID, key_prefix, one_of

_OTHER = "\x00<other>"  # no get returns it, nor anything appended to it


class Get(NamedTuple):
    value: str
    kind: Literal["get"] = "get"


class Put(NamedTuple):
    value: str
    kind: Literal["put"] = "put"


class Append(NamedTuple):
    value: str
    kind: Literal["append"] = "append"


KvCall = Get | Put | Append
_CALLS = {"get": Get, "put": Put, "append": Append}


@dataclass(frozen=True)
class KvAppend:
    initial: Any = ""
    name: str = "kv-append"

    def init(self) -> Hashable:
        return "" if self.initial is None else str(self.initial)

    def prepare(self, op: Operation) -> KvCall | None:
        if op.f not in ("get", "put", "append"):
            raise HistoryError(
                f"model kv-append has no operation {op.f!r}; it knows get, put, append",
                line=op.line,
            )
        if op.outcome == "fail":
            return None
        if op.f == "get" and (op.outcome != "ok" or op.value is UNOBSERVED):
            return None
        return _CALLS[op.f]("" if op.value is None else str(op.value))

    def step(self, state: Any, call: KvCall) -> Any:
        kind = call.kind
        if kind == "get":
            return state if state == call.value else INVALID
        if kind == "put":
            return call.value
        return state + call.value

    def read_only(self, call: KvCall) -> bool:
        return call.kind == "get"

    def describe_call(self, call: KvCall) -> str:
        return f"{call.kind} {self.describe_state(call.value)}"

    def describe_state(self, state: Any) -> str:
        if state.startswith(_OTHER):
            return "<other>"
        return repr(state if len(state) <= 60 else "…" + state[-59:])

    def explain(self, call: KvCall, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        return (
            f"{key_prefix(key)}get returned {self.describe_state(call.value)}, "
            f"but the value could only be {could} then"
        )

    def dead(self, state: Any, call: KvCall) -> bool:
        """Appends only grow the value: a get of v needs a state that is a prefix of v."""
        return call.kind == "get" and not call.value.startswith(state)

    def destroys(self, call: KvCall, needy: KvCall) -> bool:
        if call.kind == "append":
            return call.value not in needy.value
        return call.kind == "put" and not needy.value.startswith(call.value)

    def provides(self, call: KvCall) -> tuple[Any, ...]:
        return (call.value,) if call.kind == "put" else ()

    def initial_states(self, calls: Sequence[KvCall]) -> list[Any] | None:
        pieces = {c.value for c in calls if c.kind == "append" and c.value}
        states = {self.init(), _OTHER}
        states.update(c.value for c in calls if c.kind == "put")
        for call in calls:
            if call.kind != "get":
                continue
            text = call.value
            states.add(text)
            for cut in range(len(text)):
                if any(text.startswith(p, cut) for p in pieces):
                    states.add(text[:cut])
        return sorted(states)


def kv_append(initial: Any = "") -> KvAppend:
    return KvAppend(initial)
