"""Wing & Gong / Lowe's linearizability search over one independent object.

Just-in-time linearization as in porcupine and Knossos's `linear`: at each
configuration (the set of operations linearized so far and the model state),
the candidates are the operations invoked before the earliest completion still
outstanding. A depth-first search tries them in turn, memoising every
configuration it has reached, and backtracks when the earliest outstanding
completion comes and its operation has not taken effect.

On top of that:
- a read-only call that fits the current state is linearized at once, with no
  branch: any linearization that puts it later can put it here instead;
- indeterminate operations (no completion) never need to take effect, so the
  search succeeds once every determinate operation is placed, and of several
  pending indeterminate operations with equal calls only the earliest may be
  placed (they are interchangeable);
- a pending read that the current state can no longer lead to (the model's
  `dead`), while every operation that could produce a fitting state (the
  model's `provides`) is already placed, makes the configuration a dead end
  at once, without exploring it;
- a budget of time and memory: past it the verdict is unknown.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.models.base import (
    INVALID,
    Model,
    NeedsExactly,
    Refutable,
    ValueModel,
    implements,
)

_PAGE = 4096
_BUDGET_EVERY = 1024


@dataclass
class Budget:
    """When to give up: a deadline (monotonic seconds) and a resident-memory ceiling."""

    deadline: float | None = None
    max_rss_bytes: int | None = None

    def exceeded(self) -> str | None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "time limit reached"
        if self.max_rss_bytes is not None and rss_bytes() > self.max_rss_bytes:
            return f"memory limit of {self.max_rss_bytes // 2**20} MiB reached"
        return None


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:  # not Linux: fall back to the peak
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Entry:
    """One operation as the search sees it."""

    call: Hashable  # the model's call
    invoked: int  # history position of the invocation
    completed: int | None  # history position of the completion; None: indeterminate
    ref: Any = None  # what the caller wants back (the Operation)
    shown: Hashable | None = None  # the call as recorded, when `call` was rewritten

    def invoked_at(self) -> str:
        """Where the invocation is, for people: its file line when known."""
        line = getattr(self.ref, "line", None)
        return f"line {line}" if line is not None else f"index {self.invoked}"

    def completed_at(self) -> str:
        """Where the completion is: its file line when known; "never" without one."""
        if self.completed is None:
            return "never"
        line = getattr(self.ref, "completed_line", None)
        return f"line {line}" if line is not None else f"index {self.completed}"


@dataclass
class Stuck:
    """Where the search got furthest before it failed."""

    op: int  # entry that could not take effect before its completion
    states: list[Any] = field(default_factory=list)
    paths: list[list[int]] = field(default_factory=list)  # partial linearizations


@dataclass
class SearchResult:
    valid: bool | None  # None: the budget ran out
    configs: int
    linearization: list[int] | None = None
    stuck: Stuck | None = None
    reason: str | None = None


MAX_STATES = 32
MAX_PATHS = 3


def search(
    model: Model,
    entries: Sequence[Entry],
    initial: Any,
    budget: Budget | None = None,
) -> SearchResult:
    """Decide whether `entries`, sorted by `invoked`, linearize from state `initial`."""
    n = len(entries)
    step = model.step
    calls = [e.call for e in entries]
    starts = [e.invoked for e in entries]
    read_only = [model.read_only(c) for c in calls]
    ends = [e.completed for e in entries]
    refutable = implements(model, Refutable)
    dead = model.dead if refutable else None  # type: ignore[attr-defined]
    rescuers = _rescuers(model, calls, starts, ends, read_only) if refutable else None

    # Doubly linked event lists: determinate ops' calls and returns by
    # position (call event 2i, return 2i+1), and indeterminate ops' calls.
    head, tail, ihead, itail = 2 * n, 2 * n + 1, 2 * n + 2, 2 * n + 3
    nxt = [0] * (2 * n + 4)
    prv = [0] * (2 * n + 4)
    events: list[tuple[int, int]] = []
    indeterminate: list[int] = []
    for i in range(n):
        end = ends[i]
        if end is None:
            indeterminate.append(i)
        else:
            events.append((starts[i], 2 * i))
            events.append((end, 2 * i + 1))
    events.sort()
    for chain, (first, last) in (
        ([e for _, e in events], (head, tail)),
        ([2 * i for i in indeterminate], (ihead, itail)),
    ):
        prev = first
        for e in chain:
            nxt[prev] = e
            prv[e] = prev
            prev = e
        nxt[prev] = last
        prv[last] = prev

    # Interchangeable indeterminate ops: each may be placed only after the
    # previous one with an equal call.
    twin = [-1] * n
    last_seen: dict[Any, int] = {}
    for i in indeterminate:
        twin[i] = last_seen.get(calls[i], -1)
        last_seen[calls[i]] = i

    # Values the state never returns to once it leaves them (one writer, or the
    # initial value when none writes it), and the indeterminate ops needing each:
    # once the state has left v, those ops can never take effect, so whether they
    # did makes no difference to what follows, and the memo forgets them.
    once = _once_masks(model, calls, ends, initial)

    # The largest group of interchangeable indeterminate ops (equal calls), for
    # models whose calls each leave one fixed value: two configurations that
    # differ only in how many of its ops were placed (always the earliest ones),
    # the one with fewer dominates: whatever completes the other completes it,
    # using its earlier-invoked twins. The memo keeps the fewest seen.
    group = 0
    if implements(model, ValueModel) and indeterminate:
        sizes: dict[Any, int] = {}
        for i in indeterminate:
            sizes[calls[i]] = sizes.get(calls[i], 0) + 1
        biggest = max(sizes, key=sizes.__getitem__)
        if sizes[biggest] > 1:
            for i in indeterminate:
                if calls[i] == biggest:
                    group |= 1 << i

    free = _free_ops(model, calls, ends)

    remaining = n - len(indeterminate)
    if remaining == 0:
        return SearchResult(True, 0, [])

    def lift(i: int) -> None:
        e = 2 * i
        nxt[prv[e]] = nxt[e]
        prv[nxt[e]] = prv[e]
        if ends[i] is not None:
            r = e + 1
            nxt[prv[r]] = nxt[r]
            prv[nxt[r]] = prv[r]

    def unlift(i: int) -> None:
        e = 2 * i
        if ends[i] is not None:
            r = e + 1
            nxt[prv[r]] = r
            prv[nxt[r]] = r
        nxt[prv[e]] = e
        prv[nxt[e]] = e

    def candidates(state: Any, lin: int, erased: int) -> tuple[list[int], int]:
        """The ops that may take effect next, and the op whose completion bounds them.

        No ops when the configuration is a dead end; the bounding op is then
        the read it can no longer satisfy.
        """
        found: list[int] = []
        waiting: list[int] = []  # read-only ops that do not fit the state
        e = nxt[head]
        while not e & 1:
            i = e >> 1
            if read_only[i]:
                if step(state, calls[i]) is not INVALID:
                    return [i], -1
                if dead is not None and dead(state, calls[i]) and not rescuers[i] & ~lin:
                    return [], i
                waiting.append(i)
            found.append(i)
            e = nxt[e]
        frontier = e >> 1
        bound = ends[frontier]
        e = nxt[ihead]
        enables: dict[Any, bool] = {}
        frees: list[int] = []
        while e != itail:
            i = e >> 1
            if starts[i] > bound:
                break
            t = twin[i]
            if (t < 0 or lin >> t & 1) and not erased >> i & 1:
                if free[i]:
                    call = calls[i]
                    ok = enables.get(call)
                    if ok is None:
                        after = step(state, call)
                        ok = enables[call] = after is not INVALID and any(
                            step(after, calls[j]) is not INVALID for j in waiting)
                    if not ok:
                        e = nxt[e]
                        continue
                    frees.append(i)
                else:
                    found.append(i)
            e = nxt[e]
        if len(found) > 1:
            found.sort(key=starts.__getitem__)
        found.extend(frees)  # last: configurations with fewer of them dominate
        return found, frontier

    state = initial
    lin = 0
    erased = 0
    seen: dict[tuple[int, Any], int] = {}
    stack: list[tuple[int, Any, list[int], int, int, int]] = []
    cands, frontier = candidates(state, lin, erased)
    idx = 0
    configs = 0
    steps = 0
    stuck: Stuck | None = None
    stuck_end = -1
    stuck_states: set[Any] = set()

    while True:
        steps += 1
        if not steps % _BUDGET_EVERY and budget is not None:
            reason = budget.exceeded()
            if reason is not None:
                return SearchResult(None, configs, stuck=stuck, reason=reason)
        while idx < len(cands):
            i = cands[idx]
            idx += 1
            new = step(state, calls[i])
            if new is INVALID or (new == state and ends[i] is None):
                continue  # an indeterminate op that changes nothing need not happen
            new_lin = lin | (1 << i)
            new_erased = erased
            if once and new != state:
                mask = once.get(state)
                if mask:
                    new_erased |= mask
            forget = new_erased | group
            config = (new_lin & ~forget if forget else new_lin, new)
            placed = (new_lin & group).bit_count() if group else 0
            if seen.get(config, placed + 1) <= placed:
                continue
            seen[config] = placed
            configs += 1
            stack.append((i, state, cands, idx, frontier, erased))
            lift(i)
            state, lin, erased = new, new_lin, new_erased
            if ends[i] is not None:
                remaining -= 1
                if remaining == 0:
                    return SearchResult(True, configs, [s[0] for s in stack])
            cands, frontier = candidates(state, lin, erased)
            idx = 0
            break
        else:
            # Every candidate tried: this configuration cannot be completed.
            if frontier >= 0:
                end = ends[frontier]
                if end > stuck_end:
                    stuck_end = end
                    stuck = Stuck(frontier)
                    stuck_states = set()
                if end == stuck_end and stuck is not None:
                    if state not in stuck_states and len(stuck.states) < MAX_STATES:
                        stuck_states.add(state)
                        stuck.states.append(state)
                    if len(stuck.paths) < MAX_PATHS:
                        stuck.paths.append([s[0] for s in stack])
            if not stack:
                return SearchResult(False, configs, stuck=stuck)
            i, state, cands, idx, frontier, erased = stack.pop()
            unlift(i)
            lin ^= 1 << i
            if ends[i] is not None:
                remaining += 1


def _free_ops(model: Model, calls: Sequence[Any], ends: Sequence[int | None]) -> list[bool]:
    """Indeterminate ops that ignore the state and leave a value no op compares the
    state with: such an op need only ever take effect just before a read-only op that
    fits the state it leaves and not the one before (docs/checker.md)."""
    n = len(calls)
    if not implements(model, ValueModel):
        return [False] * n
    observed: set[Any] = {None, model.init()}  # type: ignore[attr-defined]
    for call in calls:
        observed.update(model.observes(call))
    return [
        ends[i] is None and not model.observes(call) and bool(model.provides(call))
        and all(v not in observed for v in model.provides(call))
        for i, call in enumerate(calls)
    ]


def _once_masks(model: Model, calls: Sequence[Any], ends: Sequence[int | None],
                initial: Any) -> dict[Any, int]:
    """For each value the state cannot return to once it leaves it, a bitmask of the
    indeterminate ops that need exactly that value; empty for other models."""
    if not implements(model, ValueModel):
        return {}
    writers: dict[Any, int] = {}
    for call in calls:
        for v in model.provides(call):
            writers[v] = writers.get(v, 0) + 1
    masks: dict[Any, int] = {}
    for i, call in enumerate(calls):
        if ends[i] is not None:
            continue
        needs = model.needs(call)
        if len(needs) != 1:
            continue
        v = needs[0]
        if writers.get(v, 0) == (0 if v == initial else 1):
            masks[v] = masks.get(v, 0) | 1 << i
    return masks


def _rescuers(
    model: Model,
    calls: Sequence[Any],
    starts: Sequence[int],
    ends: Sequence[int | None],
    read_only: Sequence[bool],
) -> list[int]:
    """For each determinate read-only op, a bitmask of the ops that could produce a
    state from which it fits, invoked before it completes."""
    provides = model.provides  # type: ignore[attr-defined]
    needs = model.needs if implements(model, NeedsExactly) else None  # type: ignore[attr-defined]
    dead = model.dead  # type: ignore[attr-defined]
    by_value: dict[Any, list[int]] = {}
    for j, call in enumerate(calls):
        for value in provides(call):
            by_value.setdefault(value, []).append(j)
    # Cumulative masks in invocation order (ops are sorted by invocation).
    cumulative: dict[Any, tuple[list[int], list[int]]] = {}
    for value, ops in by_value.items():
        masks, mask = [], 0
        for j in ops:
            mask |= 1 << j
            masks.append(mask)
        cumulative[value] = ([starts[j] for j in ops], masks)
    result = [0] * len(calls)
    for i, call in enumerate(calls):
        end = ends[i]
        if not read_only[i] or end is None:
            continue
        if needs is not None:
            fitting = [v for v in needs(call) if v in cumulative]
        else:
            fitting = [v for v in cumulative if not dead(v, call)]
        mask = 0
        for value in fitting:
            at, masks = cumulative[value]
            k = bisect.bisect_left(at, end)
            if k:
                mask |= masks[k - 1]
        result[i] = mask
    return result
