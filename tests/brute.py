"""A deliberately simple linearizability checker, to compare the real one against.

Exhaustive: every order of the operations that respects real time, each
indeterminate operation placed somewhere or nowhere; memoised on (placed set,
state) only so that it finishes. Shares nothing with checker.search.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from checker.history import Operation
from checker.models.base import INVALID, Model


def brute_force_linearizable(model: Model, operations: Sequence[Operation], initial: Any) -> bool:
    ops = []
    for op in operations:
        call = model.prepare(op)
        if call is not None:
            ops.append((call, op.invoked, op.completed))
    n = len(ops)
    must = frozenset(i for i, (_, _, ret) in enumerate(ops) if ret is not None)

    @cache
    def extend(placed: frozenset[int], state: Any) -> bool:
        if must <= placed:
            return True
        for i, (call, start, _) in enumerate(ops):
            if i in placed:
                continue
            # Everything that completed before i was invoked must come first.
            if any(j not in placed and ops[j][2] is not None and ops[j][2] < start
                   for j in range(n)):
                continue
            new = model.step(state, call)
            if new is not INVALID and extend(placed | {i}, new):
                return True
        return False

    return extend(frozenset(), initial)
