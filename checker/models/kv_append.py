"""A string per key with get, put and append (porcupine's kv model); starts at ""."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.history import UNOBSERVED, HistoryError, Operation
from checker.models.base import INVALID, key_prefix, one_of

_OTHER = "\x00<other>"  # no get returns it, nor anything appended to it


@dataclass(frozen=True)
class KvAppend:
    initial: Any = ""
    name: str = "kv-append"

    def init(self) -> Hashable:
        return "" if self.initial is None else str(self.initial)

    def prepare(self, op: Operation) -> Hashable | None:
        if op.f not in ("get", "put", "append"):
            raise HistoryError(
                f"model kv-append has no operation {op.f!r}; it knows get, put, append",
                line=op.line,
            )
        if op.outcome == "fail":
            return None
        if op.f == "get":
            if op.outcome != "ok" or op.value is UNOBSERVED:
                return None
            return ("get", "" if op.value is None else str(op.value))
        return (op.f, "" if op.value is None else str(op.value))

    def step(self, state: Any, call: Any) -> Any:
        kind = call[0]
        if kind == "get":
            return state if state == call[1] else INVALID
        if kind == "put":
            return call[1]
        return state + call[1]

    def read_only(self, call: Any) -> bool:
        return call[0] == "get"

    def describe_call(self, call: Any) -> str:
        return f"{call[0]} {self.describe_state(call[1])}"

    def describe_state(self, state: Any) -> str:
        if state.startswith(_OTHER):
            return "<other>"
        return repr(state if len(state) <= 60 else "…" + state[-59:])

    def explain(self, call: Any, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        return (
            f"{key_prefix(key)}get returned {self.describe_state(call[1])}, "
            f"but the value could only be {could} then"
        )

    def dead(self, state: Any, call: Any) -> bool:
        """Appends only grow the value: a get of v needs a state that is a prefix of v."""
        return call[0] == "get" and not call[1].startswith(state)

    def destroys(self, call: Any, needy: Any) -> bool:
        if call[0] == "append":
            return call[1] not in needy[1]
        return call[0] == "put" and not needy[1].startswith(call[1])

    def provides(self, call: Any) -> tuple[Any, ...]:
        return (call[1],) if call[0] == "put" else ()

    def initial_states(self, calls: Sequence[Any]) -> list[Any] | None:
        pieces = {c[1] for c in calls if c[0] == "append" and c[1]}
        states = {self.init(), _OTHER}
        states.update(c[1] for c in calls if c[0] == "put")
        for call in calls:
            if call[0] != "get":
                continue
            text = call[1]
            states.add(text)
            for cut in range(len(text)):
                if any(text.startswith(p, cut) for p in pieces):
                    states.add(text[:cut])
        return sorted(states)


def kv_append(initial: Any = "") -> KvAppend:
    return KvAppend(initial)
