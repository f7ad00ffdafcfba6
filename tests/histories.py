"""Building small histories in tests: ops from compact tuples, and checks on them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checker import UNOBSERVED, Op, Operation, check_operations, make_model, pair
from checker.linearizable import CheckResult

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
