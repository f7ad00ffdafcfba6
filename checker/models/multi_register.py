"""Knossos's multi-register: `:txn` ops over named registers.

A txn's value is a list of [f k v] micro-ops, f being read (or r) and write
(or w), applied in order and atomically. A read of nil says nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from checker.history import HistoryError, Operation
from checker.models.base import INVALID, freeze, key_prefix, one_of, show

_KINDS = {"read": "r", "r": "r", "write": "w", "w": "w"}


class Micro(NamedTuple):
    """One micro-op of a txn: a read ("r") or write ("w") of `value` in `register`."""

    f: Literal["r", "w"]
    register: Hashable
    value: Hashable


class Txn(NamedTuple):
    micro: tuple[Micro, ...]
    kind: Literal["txn"] = "txn"


@dataclass(frozen=True)
class MultiRegister:
    initial: Any = None
    name: str = "multi-register"

    def init(self) -> Hashable:
        initial = self.initial or {}
        if not isinstance(initial, dict):
            raise ValueError("multi-register's initial value is a map, like {\"x\": 0}")
        return tuple(sorted((freeze(k), freeze(v)) for k, v in initial.items()))

    def prepare(self, op: Operation) -> Txn | None:
        if op.f != "txn":
            raise HistoryError(
                f"model multi-register has no operation {op.f!r}; it knows txn", line=op.line
            )
        if op.outcome == "fail":
            return None
        micro = []
        for mop in op.value or ():
            if not isinstance(mop, list | tuple) or len(mop) != 3 or mop[0] not in _KINDS:
                raise HistoryError(f"txn micro-op must be [read|write k v], got {mop!r}",
                                   line=op.line)
            kind = _KINDS[mop[0]]
            if kind == "r" and (mop[2] is None or op.outcome != "ok"):
                continue
            micro.append(Micro(kind, freeze(mop[1]), freeze(mop[2])))
        return Txn(tuple(micro)) if micro else None

    def step(self, state: Any, call: Txn) -> Any:
        regs = dict(state)
        for f, k, v in call.micro:
            if f == "w":
                regs[k] = v
            elif regs.get(k) != v:
                return INVALID
        return tuple(sorted(regs.items()))

    def read_only(self, call: Txn) -> bool:
        return all(m.f == "r" for m in call.micro)

    def describe_call(self, call: Txn) -> str:
        parts = [f"{'read' if f == 'r' else 'write'} {show(k)} {show(v)}"
                 for f, k, v in call.micro]
        return "txn [" + ", ".join(parts) + "]"

    def describe_state(self, state: Any) -> str:
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in state) + "}"

    def explain(self, call: Txn, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        return (f"{key_prefix(key)}{self.describe_call(call)} succeeded, but the registers "
                f"could only be {could} then")

    def initial_states(self, calls: Sequence[Txn]) -> list[Any] | None:
        return None


def multi_register(initial: Any = None) -> MultiRegister:
    return MultiRegister(initial)
