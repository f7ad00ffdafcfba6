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
from typing import Any, Literal, NamedTuple

from checker.history import UNOBSERVED, HistoryError, Operation
from checker.models.base import INVALID, NOTHING, OTHER, freeze, key_prefix, one_of, show
from checker.models.etcd_errors import PRECONDITION_FAILURES
from checker.models.register import Cas, Read, Write, cas_pair

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



class CasFailed(NamedTuple):
    """A cas whose compare with `old` failed: the key held something else, or nothing."""

    old: Hashable
    kind: Literal["cas-failed"] = "cas-failed"


class Create(NamedTuple):
    """A create (prevExist=false) of `value` that succeeded."""

    value: Hashable
    kind: Literal["create"] = "create"


class CreateFailed(NamedTuple):
    kind: Literal["create-failed"] = "create-failed"


class Delete(NamedTuple):
    kind: Literal["delete"] = "delete"


class DeleteFailed(NamedTuple):
    kind: Literal["delete-failed"] = "delete-failed"


EtcdCall = Read | Write | Cas | CasFailed | Create | CreateFailed | Delete | DeleteFailed

_READ_ONLY = frozenset({"read", "cas-failed", "create-failed", "delete-failed"})
_FAILED = {"cas": CasFailed, "create": CreateFailed, "delete": DeleteFailed}


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

    def prepare(self, op: Operation) -> EtcdCall | None:
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
            return CasFailed(cas_pair(op)[0]) if f == "cas" else _FAILED[f]()
        if f == "read":
            if op.outcome != "ok" or op.value is UNOBSERVED:
                return None
            return Read(freeze(op.value))
        if f == "write":
            return Write(freeze(op.value))
        if f == "cas":
            return Cas(*cas_pair(op))
        if f == "create":
            return Create(freeze(op.value))
        return Delete()

    def step(self, state: Any, call: EtcdCall) -> Any:
        kind = call.kind
        if kind == "read":
            return state if state == call.value else INVALID
        if kind == "write":
            return call.value
        if kind == "cas":
            return call.new if state is not None and state == call.old else INVALID
        if kind == "cas-failed":
            return state if state is None or state != call.old else INVALID
        if kind == "create":
            return call.value if state is None else INVALID
        if kind == "create-failed":
            return state if state is not None else INVALID
        if kind == "delete":
            return None if state is not None else INVALID
        return state if state is None else INVALID  # delete-failed

    def read_only(self, call: EtcdCall) -> bool:
        return call.kind in _READ_ONLY

    def describe_call(self, call: EtcdCall) -> str:
        kind = call.kind
        if kind == "read":
            return f"read {self.describe_state(call.value)}"
        if kind in ("write", "create"):
            return f"{kind} {show(call.value)}"
        if kind == "cas":
            return f"cas {show(call.old)}→{show(call.new)}"
        if kind == "cas-failed":
            return f"cas from {show(call.old)} failed"
        return kind.replace("-", " ")

    def describe_state(self, state: Any) -> str:
        return "absent" if state is None else show(state)

    def explain(self, call: EtcdCall, states: Sequence[Any], key: Any) -> str:
        could = one_of(states, self.describe_state)
        kind = call.kind
        if kind == "read":
            what = f"read returned {self.describe_state(call.value)}"
        elif kind == "cas":
            what = f"cas from {show(call.old)} to {show(call.new)} succeeded"
        elif kind == "cas-failed":
            what = f"cas from {show(call.old)} failed its compare"
        elif kind == "create-failed":
            what = "create failed because the key existed"
        elif kind == "delete-failed":
            what = "delete failed because the key was absent"
        else:
            what = f"{kind} succeeded"
        return f"{key_prefix(key)}{what}, but the key could only be {could} then"

    def dead(self, state: Any, call: EtcdCall) -> bool:
        """A read of v (a cas from v) fits no state but v, until something writes v."""
        needs = self.needs(call)
        return bool(needs) and state != needs[0]

    def destroys(self, call: EtcdCall, needy: EtcdCall) -> bool:
        left = self.provides(call)
        return bool(left) and left[0] != self.needs(needy)[0]

    def needs(self, call: EtcdCall) -> tuple[Any, ...]:
        kind = call.kind
        if kind == "read":
            return (call.value,)
        return (call.old,) if kind == "cas" else ()

    def provides(self, call: EtcdCall) -> tuple[Any, ...]:
        kind = call.kind
        if kind in ("write", "create"):
            return (call.value,)
        if kind == "cas":
            return (call.new,)
        return (None,) if kind == "delete" else ()

    def observes(self, call: EtcdCall) -> tuple[Any, ...]:
        kind = call.kind
        if kind == "write":
            return ()
        if kind == "read":
            return (call.value,)
        if kind in ("cas", "cas-failed"):
            return (call.old, None)
        return (None,)  # create, delete and their failures ask whether the key exists

    def with_written(self, call: EtcdCall, value: Any) -> EtcdCall | None:
        kind = call.kind
        if kind == "write":
            return Write(value)
        if kind == "create":
            return Create(value)
        return Cas(call.old, value) if kind == "cas" else None

    def register_effect(self, call: EtcdCall) -> tuple[Any, Any] | None:
        kind = call.kind
        if kind == "read":
            return call.value, NOTHING
        if kind == "write":
            return NOTHING, call.value
        if kind == "cas" and call.old is not None:  # a cas from absent never succeeds
            return call.old, call.new
        if kind == "delete-failed":  # the key was absent: a read of None
            return None, NOTHING
        if kind == "cas-failed" and call.old is None:  # fits every state
            return NOTHING, NOTHING
        return None  # create and delete write None, which may recur

    def register_excludes(self, call: EtcdCall) -> Any:
        kind = call.kind
        if kind == "cas-failed":  # fits every state but its old value (absent included)
            return call.old
        return None if kind == "create-failed" else NOTHING

    def initial_states(self, calls: Sequence[EtcdCall]) -> list[Any] | None:
        values: set[Any] = {None, self.init()}
        for call in calls:
            values.update(self.observes(call), self.provides(call))
        return [*values, OTHER]


def etcd(initial: Any = None) -> Etcd:
    return Etcd(initial)


def kv(initial: Any = None) -> Etcd:
    return Etcd(initial, name="kv")
