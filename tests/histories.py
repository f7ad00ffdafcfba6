"""Building small histories in tests: ops from compact tuples, and checks on them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from hypothesis import strategies as st

from checker import UNOBSERVED, Op, Operation, check_operations, make_model, pair
from checker.explain import Window
from checker.linearizable import CheckResult
from checker.search import Budget, Entry, search
from tests.brute import brute_force_linearizable

_ = UNOBSERVED


def history(*events: tuple) -> list[Op]:
    """Events are (process, type, f, value[, error]); value `_` means unobserved."""
    ops = []
    for i, ev in enumerate(events):
        process, typ, f, value = ev[:4]
        error = ev[4] if len(ev) > 4 else None
        ops.append(Op(i, process, typ, f, value, None, None, error))
    return ops


def check(model: str, ops: Sequence[Op], initial: Any = None, **kw: Any) -> CheckResult:
    return check_operations(make_model(model, initial), pair(ops), workers=1, **kw)


def operations(ops: Sequence[Op]) -> list[Operation]:
    return list(pair(ops))


class Shape(Protocol):
    """What a random history is made of: the calls, and how each completes."""

    def invoke(self, draw: Any) -> tuple[str, Any]:
        """f and the invocation's value of the next operation."""
        ...

    def outcome(self, draw: Any, f: str, value: Any) -> str:
        """ok, fail, info (a timeout: the process is replaced) or pending (never ends)."""
        ...

    def completion(self, draw: Any, f: str, value: Any, outcome: str) -> tuple[Any, Any]:
        """The completion's value and error (outcome ok or fail)."""
        ...


def interleaved(draw: Any, shape: Shape, max_ops: int = 12, max_processes: int = 4) -> list[Op]:
    """Up to `max_ops` operations by up to `max_processes` processes, in any interleaving
    hypothesis draws, with Jepsen's process replacement after info."""
    n_ops = draw(st.integers(1, max_ops))
    ops: list[Op] = []
    busy: dict[int, tuple[str, Any]] = {}
    idle = list(range(draw(st.integers(1, max_processes))))
    next_process = len(idle)
    invoked = 0
    while invoked < n_ops or busy:
        if invoked < n_ops and idle and (not busy or draw(st.booleans())):
            p = idle.pop(draw(st.integers(0, len(idle) - 1)))
            f, value = shape.invoke(draw)
            busy[p] = (f, value)
            ops.append(Op(len(ops), p, "invoke", f, value))
            invoked += 1
            continue
        if not busy:
            break
        p = draw(st.sampled_from(sorted(busy)))
        f, value = busy.pop(p)
        outcome = shape.outcome(draw, f, value)
        if outcome == "pending":
            continue  # never completes
        if outcome == "info":
            ops.append(Op(len(ops), p, "info", f, value, error="timeout"))
            idle.append(next_process)
            next_process += 1
            continue
        done, error = shape.completion(draw, f, value, outcome)
        ops.append(Op(len(ops), p, outcome, f, done, error=error))
        idle.append(p)
    return ops


def window_operations(window: Window) -> list[Operation]:
    recorded = [o.operation for o in window.ops]
    assert all(o is not None for o in recorded), "a window's operations come from the history"
    return [o for o in recorded if o is not None]


def assert_window_fails(model: Any, window: Window) -> None:
    """The reported window is itself not linearizable, from every state it could start in."""
    ops = window_operations(window)
    calls = []
    for op in ops:
        call = model.prepare(op)
        if call is not None and not (op.completed is None and model.read_only(call)):
            calls.append(Entry(call, op.invoked, op.completed, op))
    starts = [model.init()]
    assert window.verified
    if window.initial == "any":
        starts = model.initial_states([e.call for e in calls])
        assert starts
    for state in starts:
        assert search(model, calls, state, Budget()).valid is False, (
            f"window linearizes from {state!r}: {window.ops}"
        )
        if len(ops) <= 10:
            assert not brute_force_linearizable(model, ops, state)
