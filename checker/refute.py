"""Cheap proofs that a history is not linearizable, before any search.

For an operation r that needs the state to fit it (a read of v, a cas from v):
if an operation d that leaves no fitting state completed before r began, and
every operation that could produce a fitting state again had completed before
d began, then r can never take effect: real-time order puts every producer
before d and d before r. The initial state counts as a producer that finished
before everything. This catches the classic stale read in time linear in the
history, where a search would have to refute every interleaving.

Models opt in by implementing `Refutable` (`dead`, `provides`, `destroys`);
`NeedsExactly` (`needs`: the exact fitting values) makes it faster.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from checker.models.base import Model, NeedsExactly, Refutable, implements
from checker.search import Entry

SCAN_LIMIT = 256  # ops looked at, backwards from r, for a destroyer
_INF = float("inf")


@dataclass
class Refutation:
    culprit: int  # entry that cannot take effect
    destroyer: int | None  # entry that left no fitting state; None: none was ever produced
    producer: int | None  # the last entry that could produce a fitting state; None: initial
    window: tuple[int, int]  # entries[first:stop] is not linearizable
    from_any_state: bool
    why: str


def refute(model: Model, entries: Sequence[Entry]) -> Refutation | None:
    if not implements(model, Refutable):
        return None
    dead, provides, destroys = model.dead, model.provides, model.destroys
    needs = model.needs if implements(model, NeedsExactly) else None
    starts = [e.invoked for e in entries]
    # value -> (starts, running max of ends, running argmax) over its producers
    producers: dict[Any, tuple[list[int], list[float], list[int]]] = {}
    for j, e in enumerate(entries):
        for value in provides(e.call):
            at, ends, who = producers.setdefault(value, ([], [], []))
            end = _INF if e.completed is None else e.completed
            if ends and ends[-1] >= end:
                end, k = ends[-1], who[-1]
            else:
                k = j
            at.append(e.invoked)
            ends.append(end)
            who.append(k)
    init = model.init()
    for r, e in enumerate(entries):
        if e.completed is None:
            continue
        if needs is not None:
            wanted = needs(e.call)
            if not wanted:
                continue
            fitting = [v for v in wanted if v in producers]
        else:
            if not model.read_only(e.call):
                continue
            fitting = [v for v in producers if not dead(v, e.call)]
        last, producer = (-1.0, None) if not dead(init, e.call) else (None, None)
        for value in fitting:
            at, ends, who = producers[value]
            k = bisect.bisect_left(at, e.completed)
            if k and (last is None or ends[k - 1] > last):
                last, producer = ends[k - 1], who[k - 1]
        stop = bisect.bisect_left(starts, e.completed)
        if last is None:
            return Refutation(
                r, None, None, (0, stop), False,
                f"{model.describe_call(e.call)} needs a value that neither the initial "
                f"state nor any operation invoked before it completed could produce",
            )
        if last == _INF:
            continue  # a producer that may take effect at any time
        d = bisect.bisect_left(starts, e.invoked) - 1
        scanned = 0
        while d >= 0 and starts[d] > last and scanned < SCAN_LIMIT:
            cand = entries[d]
            done = cand.completed
            if done is not None and done < e.invoked and destroys(cand.call, e.call):
                return Refutation(
                    r, d, producer, (d, stop), True,
                    _why(model, entries, e, cand, producer),
                )
            d -= 1
            scanned += 1
    return None


def _why(model: Model, entries: Sequence[Entry], needy: Entry, destroyer: Entry,
         producer: int | None) -> str:
    what, killer = model.describe_call(needy.call), model.describe_call(destroyer.call)
    text = (
        f"{what} (invoked at {needy.invoked_at()}) cannot take effect: {killer} completed at "
        f"{destroyer.completed_at()}, before it began, and left a value it cannot fit; "
    )
    if producer is None:
        return text + "only the initial value fitted, and nothing could restore one"
    made = entries[producer]
    return text + (
        f"the last operation that could restore a fitting value, "
        f"{model.describe_call(made.call)}, completed at {made.completed_at()}, "
        f"before {killer} began"
    )
