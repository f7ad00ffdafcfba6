"""Reductions of one key's operations before the general search (proofs: docs/checker.md).

For models whose state is one value (`ValueModel`: registers and etcd keys):

- *Unproducible*: an indeterminate operation that needs a value (a cas from v)
  that is neither the initial value nor provided by any operation that may
  take effect never takes effect: dropped (repeatedly, as dropping one can make
  another's value unproducible).
- *Unobserved values collapse*: a value no operation compares the state with
  (no read, cas, or failed cas of it; never the initial value; never absent)
  is indistinguishable from any other such value. Every write of one is
  rewritten to write one placeholder, `OTHER`: configurations that differ only
  in which unobserved value the register holds become one, and indeterminate
  writes of unobserved values become equal calls, which the search's symmetry
  rule places in invocation order only.
- *Single writers bound indeterminate ones*: when exactly one operation can
  write v (and v is not the initial value), every operation that needs v must
  follow it; if that writer is indeterminate and some determinate operation
  needs v, the writer must take effect, before the earliest such operation
  completes: it becomes determinate with that completion.

The search then decides the reduced operations. Explanations use the
operations as recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from checker.models.base import OTHER, Model, ValueModel, implements
from checker.search import Entry


def reduce(model: Model, entries: Sequence[Entry],
           deadlines: bool = True) -> tuple[list[Entry], list[int]]:
    """`entries` reduced as above (still sorted by invocation), and the indexes in `entries`
    of those kept, in order; unchanged for other models. Without `deadlines`, no
    indeterminate op becomes determinate: the result stays equivalent to `entries` in
    every window (a read outside a window cannot bind a write inside it)."""
    if not implements(model, ValueModel):
        return list(entries), list(range(len(entries)))
    init = model.init()
    n = len(entries)
    needs = [model.needs(e.call) for e in entries]
    provides = [model.provides(e.call) for e in entries]

    # Unproducible: drop indeterminate ops whose needed value nobody may write.
    alive = [True] * n
    writers: dict[object, int] = {}
    for i in range(n):
        for v in provides[i]:
            writers[v] = writers.get(v, 0) + 1
    changed = True
    while changed:
        changed = False
        for i in range(n):
            if not alive[i] or entries[i].completed is not None or not needs[i]:
                continue
            if all(v != init and not writers.get(v) for v in needs[i]):
                alive[i] = False
                changed = True
                for v in provides[i]:
                    writers[v] -= 1
    kept = [i for i in range(n) if alive[i]]

    observed: set[object] = {init, None}
    for i in kept:
        observed.update(model.observes(entries[i].call))

    # Single writers: the earliest completion among determinate ops needing v.
    single: dict[object, int] = {}
    for i in kept:
        for v in provides[i]:
            single[v] = -1 if v in single else i
    deadline: dict[int, int] = {}
    for i in kept if deadlines else ():
        e = entries[i]
        if e.completed is None:
            continue
        for v in needs[i]:
            j = single.get(v, -1)
            if (j >= 0 and v != init and entries[j].completed is None
                    and e.completed > entries[j].invoked):
                deadline[j] = min(deadline.get(j, e.completed), e.completed)

    out: list[Entry] = []
    for i in kept:
        e = entries[i]
        call = e.call
        written = provides[i]
        if written and all(v not in observed for v in written):
            renamed = model.with_written(call, OTHER)
            if renamed is not None:
                call = renamed
        end = deadline.get(i, e.completed)
        if call is not e.call or end != e.completed:
            shown = e.shown if e.shown is not None else e.call
            e = replace(e, call=call, completed=end, shown=shown)
        out.append(e)
    return out, kept
