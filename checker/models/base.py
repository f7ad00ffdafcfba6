"""What every model is: the sequential object a history must match.

A model turns each paired `Operation` into a *call*, or None when the operation
can have had no effect and constrains nothing, and steps a state by a call. A
call is a NamedTuple, one class per kind of call (`Read`, `Write`, `Cas`, …),
whose last field `kind` names it, so that calls of different kinds never
compare equal. Calls and states must be hashable: the search memoises (linearized
set, state) configurations and compares calls to find interchangeable ones.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final, Protocol, runtime_checkable

from checker.history import UNOBSERVED, Operation


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()
"""What `step` returns when the call cannot happen in that state."""


class _Other:
    """A value that no operation mentions: stands for every such value at once."""

    def __repr__(self) -> str:
        return "<other>"

    def __reduce__(self) -> str:
        return "OTHER"


OTHER: Final = _Other()


class _Nothing:
    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Final = _Nothing()
"""In `RegisterModel.register_effect`: the call reads (or writes) no value."""


class SequentialModel(Protocol):
    """The sequential object itself: all the search needs."""

    name: str

    def init(self) -> Hashable: ...

    def prepare(self, op: Operation) -> Hashable | None:
        """The call for this operation, or None when it constrains nothing."""
        ...

    def step(self, state: Any, call: Any) -> Any:
        """The state after `call`, or INVALID."""
        ...

    def read_only(self, call: Any) -> bool:
        """True when `call` never changes any state (it may still refuse one)."""
        ...


class Explainable(Protocol):
    """What counterexamples need."""

    def describe_call(self, call: Any) -> str: ...

    def describe_state(self, state: Any) -> str: ...

    def explain(self, call: Any, states: Sequence[Any], key: Any) -> str:
        """One line: why `call` could not take effect in any of `states`."""
        ...

    def initial_states(self, calls: Sequence[Any]) -> list[Any] | None:
        """States that stand for every state a window of `calls` could start in.

        None when the model cannot say; then a window must start at the
        history's beginning, from `init()`.
        """
        ...


class Model(SequentialModel, Explainable, Protocol):
    """A model the checker takes: the sequential object and its explanations.
    Optional, declared apart and checked with isinstance: `Refutable`,
    `NeedsExactly`, `ValueModel` (search reductions), `RegisterModel` and
    `RegisterExclusions` (zones)."""


@runtime_checkable
class Refutable(Protocol):
    """What cheap refutation (checker/refute.py) and the search's dead-end rule need."""

    def dead(self, state: Any, call: Any) -> bool:
        """True when `call` (read-only, or needing a value) fits no state `state` can
        lead to without another operation providing a fitting one."""
        ...

    def provides(self, call: Any) -> tuple[Any, ...]:
        """The states `call` can leave."""
        ...

    def destroys(self, call: Any, needy: Any) -> bool:
        """True when `call` leaves a state that `needy` does not fit."""
        ...


@runtime_checkable
class NeedsExactly(Protocol):
    """Models whose needy calls fit exactly the values listed (faster refutation)."""

    def needs(self, call: Any) -> tuple[Any, ...]:
        """The states `call` fits; () when it fits any."""
        ...


@runtime_checkable
class RegisterModel(Protocol):
    """A model whose plain calls read one value, write one, or both (a cas).

    The zone decision procedure (checker/zones.py) uses it for histories whose
    written values are all distinct.
    """

    def register_effect(self, call: Any) -> tuple[Any, Any] | None:
        """(value the call needs, value it leaves), NOTHING for neither; None when the
        call is not a plain read, write or successful cas."""
        ...


@runtime_checkable
class RegisterExclusions(Protocol):
    """A register model with read-only calls that fit every value but one (a failed
    cas fits any value except the one it compared with).

    The zone procedure decides histories with such calls when it can (it may still
    leave them to the search).
    """

    def register_excludes(self, call: Any) -> Any:
        """The one value a read-only call does not fit, or NOTHING when the call is not
        of that kind (it fits every state but that value, and changes none)."""
        ...


@runtime_checkable
class ValueModel(Protocol):
    """A model whose states are single values that calls compare with and overwrite.

    The reductions in checker/reduce.py use it, with the refutation members
    `needs` (the one value a call needs the state to equal) and `provides`.
    """

    def observes(self, call: Any) -> tuple[Any, ...]:
        """Every value the call compares the state with (to succeed or to fail)."""
        ...

    def with_written(self, call: Any, value: Any) -> Any:
        """The same call writing `value` instead; None when it writes nothing."""
        ...

    def needs(self, call: Any) -> tuple[Any, ...]: ...

    def provides(self, call: Any) -> tuple[Any, ...]: ...


_KINDS: dict[tuple[type, type], bool] = {}


def implements(model: Any, protocol: type) -> bool:
    """isinstance(model, protocol) for a runtime-checkable Protocol, remembered per
    class (checking a Protocol walks its members every time)."""
    key = (type(model), protocol)
    known = _KINDS.get(key)
    if known is None:
        known = _KINDS[key] = isinstance(model, protocol)
    return known


def freeze(value: Any) -> Hashable:
    """A hashable copy of a JSON-like value (lists become tuples, dicts sorted tuples)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return ("<dict>", *sorted((freeze(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value


def show(value: Any) -> str:
    """A value as a person reads it in an explanation."""
    if value is None:
        return "nil"
    if value is UNOBSERVED:
        return "?"
    if isinstance(value, tuple) and value[:1] == ("<dict>",):
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in value[1:]) + "}"
    if isinstance(value, tuple):
        return "[" + " ".join(show(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def one_of(states: Sequence[Any], describe: Any) -> str:
    shown = sorted({describe(s) for s in states})
    if not shown:
        return "nothing"
    if len(shown) > 8:
        shown = [*shown[:8], f"… ({len(shown) - 8} more)"]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def key_prefix(key: Any) -> str:
    return "" if key is None else f"key {show(key)}: "
