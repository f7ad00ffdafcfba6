"""One etcd v2 key (`etcd`), and many of them checked key by key (`kv`).

The state is the key's value, None when the key is absent. Unlike Knossos's
registers, a read of null is an observation: the key did not exist. A request
that failed on its precondition (compare failed, key not found, key exists)
is an observation too, as in porcupine's etcd model: at some instant inside
the operation the precondition did not hold. Any other failure is a request
the server never applied, so it constrains nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.history import UNOBSERVED, HistoryError, Operation
from checker.models.base import INVALID, NOTHING, OTHER, freeze, key_prefix, one_of, show
from checker.models.etcd_errors import PRECONDITION_FAILURES
from checker.models.register import cas_pair

# Errors that mean "the server evaluated the precondition and it was false".
PRECONDITION_ERRORS = frozenset(
    {
        None,  # Jepsen's etcd tests and porcupine: `:fail :cas [1 2]` carries no error
        "node-exists",
        "not-found",
        *PRECONDITION_FAILURES,
        *PRECONDITION_FAILURES.values(),
    }
)

_READ_ONLY = frozenset({"read", "cas-failed", "create-failed", "delete-failed"})


def _error_code(error: Any) -> Any:
    if isinstance(error, dict):
        return error.get("errorCode", error.get("code"))
    if isinstance(error, list | tuple) and error:
        return error[0]
    return error


@dataclass(frozen=True)
class Etcd:
    initial: Any = None
    name: str = "etcd"

    def init(self) -> Hashable:
        return freeze(self.initial)

    def prepare(self, op: Operation) -> Hashable | None:
        f = op.f
        if f not in ("read", "write", "cas", "create", "delete"):
            raise HistoryError(
                f"model {self.name} has no operation {f!r}; it knows read, write, cas, "
                "create, delete",
                line=op.line,
            )
        if op.outcome == "fail":
            if _error_code(op.error) not in PRECONDITION_ERRORS or f in ("read", "write"):
                return None
            if f == "cas":
                return ("cas-failed", cas_pair(op)[0])
            return (f"{f}-failed",)
        if f == "read":
            if op.outcome != "ok" or op.value is UNOBSERVED:
                return None
            return ("read", freeze(op.value))
        if f == "write":
            return ("write", freeze(op.value))
        if f == "cas":
            return ("cas", *cas_pair(op))
        if f == "create":
            return ("create", freeze(op.value))
        return ("delete",)

    def step(self, state: Any, call: Any) -> Any:
        kind = call[0]
        if kind == "read":
            return state if state == call[1] else INVALID
        if kind == "write":
            return call[1]
        if kind == "cas":
            return call[2] if state is not None and state == call[1] else INVALID
        if kind == "cas-failed":
            return state if state is None or state != call[1] else INVALID
        if kind == "create":
            return call[1] if state is None else INVALID
        if kind == "create-failed":
            return state if state is not None else INVALID
        if kind == "delete":
            return None if state is not None else INVALID
        return state if state is None else INVALID  # delete-failed

    def read_only(self, call: Any) -> bool:
        return call[0] in _READ_ONLY

    def describe_call(self, call: Any) -> str:
        kind = call[0]
        if kind == "read":
            return f"read {self.describe_state(call[1])}"
        if kind == "write":
            return f"write {show(call[1])}"
        if kind == "cas":
            return f"cas {show(call[1])}→{show(call[2])}"
        if kind == "cas-failed":
            return f"cas from {show(call[1])} failed"
        if kind == "create":
            return f"create {show(call[1])}"
        return kind.replace("-", " ")

    def describe_state(self, state: Any) -> str:
        return "absent" if state is None else show(state)

    def explain(self, call: Any, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        what = {
            "read": lambda: f"read returned {self.describe_state(call[1])}",
            "cas": lambda: f"cas from {show(call[1])} to {show(call[2])} succeeded",
            "cas-failed": lambda: f"cas from {show(call[1])} failed its compare",
            "create": lambda: "create succeeded",
            "create-failed": lambda: "create failed because the key existed",
            "delete": lambda: "delete succeeded",
            "delete-failed": lambda: "delete failed because the key was absent",
        }[call[0]]()
        return f"{key_prefix(key)}{what}, but the key could only be {could} then"

    def dead(self, state: Any, call: Any) -> bool:
        """A read of v (a cas from v) fits no state but v, until something writes v."""
        return call[0] in ("read", "cas") and state != call[1]

    def destroys(self, call: Any, needy: Any) -> bool:
        kind = call[0]
        if kind in ("write", "cas", "create"):
            return call[-1] != needy[1]
        return kind == "delete" and needy[1] is not None

    def needs(self, call: Any) -> tuple[Any, ...]:
        return (call[1],) if call[0] in ("read", "cas") else ()

    def provides(self, call: Any) -> tuple[Any, ...]:
        kind = call[0]
        if kind in ("write", "cas", "create"):
            return (call[-1],)
        return (None,) if kind == "delete" else ()

    def observes(self, call: Any) -> tuple[Any, ...]:
        kind = call[0]
        if kind == "write":
            return ()
        if kind in ("read", "cas", "cas-failed"):
            return (call[1], None) if kind != "read" else (call[1],)
        return (None,)  # create, delete and their failures ask whether the key exists

    def with_written(self, call: Any, value: Any) -> Any:
        kind = call[0]
        if kind in ("write", "create"):
            return (kind, value)
        return ("cas", call[1], value) if kind == "cas" else None

    def register_effect(self, call: Any) -> tuple[Any, Any] | None:
        kind = call[0]
        if kind == "read":
            return call[1], NOTHING
        if kind == "write":
            return NOTHING, call[1]
        if kind == "cas" and call[1] is not None:  # a cas from absent never succeeds
            return call[1], call[2]
        if kind == "delete-failed":  # the key was absent: a read of None
            return None, NOTHING
        if kind == "cas-failed" and call[1] is None:  # fits every state
            return NOTHING, NOTHING
        return None  # create and delete write None, which may recur

    def register_excludes(self, call: Any) -> Any:
        kind = call[0]
        if kind == "cas-failed":  # fits every state but its old value (absent included)
            return call[1]
        return None if kind == "create-failed" else NOTHING

    def initial_states(self, calls: Sequence[Any]) -> list[Any] | None:
        values: set[Any] = {None, self.init()}
        for call in calls:
            values.update(call[1:])
        return [*values, OTHER]


def etcd(initial: Any = None) -> Etcd:
    return Etcd(initial)


def kv(initial: Any = None) -> Etcd:
    return Etcd(initial, name="kv")
