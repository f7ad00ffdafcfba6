"""A polynomial decision procedure for registers whose written values are all distinct.

Gibbons & Korach ("Testing shared memories", SIAM J. Comput. 1997) decide a
read/write register history with a known read-mapping by "zones"; here the
same idea is extended to compare-and-set and to indeterminate operations.
docs/checker.md carries the proofs; in short:

1. Every write and successful cas writes a value no other operation writes and
   that differs from the initial value, so each read (and each cas) names the
   one operation it must follow: its *writer*. An operation that needs a value
   nobody can write never takes effect (fatal for a determinate one).
2. A value is *needed* when it is the initial value, written by a determinate
   operation, read by a determinate operation, or read by a cas that writes a
   needed value. An indeterminate operation that writes a value not needed is
   irrelevant: drop it. Every operation left must take effect.
3. Since no value is written twice, the register holds each value during one
   stretch of the linearization, and a cas from v ends v's stretch and starts
   its new value's. A *chain* is a write (or the initial value) followed by the
   cas links that start from it; at most one cas may leave a value. Chains
   follow one another in the linearization, each over one stretch of time.
4. A chain fits its own operations' intervals iff, for its values in order,
   no operation that must come before value k's instant (a read of an earlier
   value, or the operation that writes k) was invoked after an operation that
   must come after it (a read of value k or later, or a later writer)
   completed. It then occupies any stretch [x, y) with x before D, the first
   completion among its operations, and y after L, the last invocation.
5. Chains with D < L (forward zones) must hold the register across [D, L], so
   forward zones must be disjoint; a chain with L < D (a backward zone) needs
   an instant in (L, D) that no forward zone covers. Those conditions, with 4,
   are necessary and sufficient.
6. Read-only operations that fit every value but one (an etcd failed cas fits any
   value but the one it compared with; a failed create any but absent) are left
   out of 1-5: if the others do not linearize, neither does the whole. If they do,
   a concrete linearization of the others is built (chains in an order that keeps
   every later chain placeable, or in the zone order of 5; every operation as
   early as that order allows; timed-out writes nobody needs put in where they
   end a value such an operation must not see), and when every such operation
   finds, inside its interval, an instant at which that linearization holds
   another value, the whole linearizes. Otherwise the verdict is left to the
   search (None): another linearization may exist.

Every step is linear or a sort: O(n log n) for n operations.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from checker.models.base import (
    NOTHING,
    Model,
    RegisterExclusions,
    RegisterModel,
    implements,
    key_prefix,
    show,
)
from checker.search import Entry

_INF = float("inf")
_INIT = -1  # the initial value's writer: as if invoked at -2 and completed at -1


@dataclass
class ZoneVerdict:
    valid: bool
    kept: list[int] = field(default_factory=list)  # entries that must take effect
    dropped: int = 0  # indeterminate entries shown irrelevant
    culprit: int | None = None  # entry the explanation is about
    why: str | None = None
    involved: list[int] = field(default_factory=list)  # entries the proof names


@dataclass
class _Chain:
    values: list[Any]
    ops: list[int]  # entry indexes, writer first
    first_end: float  # D
    first_end_op: int
    last_start: int  # L
    last_start_op: int


def _effect(model: Any, call: Any) -> tuple[Any, Any] | Any:
    """The call's register effect; or, for a read-only call that fits every value but
    one, `_Excludes(value)`; None when the procedure cannot take the call."""
    effect = model.register_effect(call)
    if effect is None and implements(model, RegisterExclusions):
        excluded = model.register_excludes(call)
        if excluded is not NOTHING:
            return _Excludes(excluded)
    return effect


@dataclass(frozen=True)
class _Excludes:
    value: Any


def decide(model: Model, entries: Sequence[Entry], key: Any = None) -> ZoneVerdict | None:
    """Whether `entries` (sorted by start) linearize from `model.init()`; None when a
    written value repeats (or equals the initial one), the model does not fit, or
    operations that exclude a value do not fit the witness built for the others."""
    if not implements(model, RegisterModel):
        return None
    init = model.init()
    effects: list[tuple[Any, Any]] = []
    excludes: dict[int, Any] = {}  # determinate read-only entries -> the value they exclude
    aside: set[int] = set()  # read-only entries left out until 6 (or for good)
    writer: dict[Any, int] = {init: _INIT}
    for i, e in enumerate(entries):
        effect = _effect(model, e.call)
        if effect is None:
            return None
        if isinstance(effect, _Excludes) or effect == (NOTHING, NOTHING):
            if isinstance(effect, _Excludes) and e.completed is not None:
                excludes[i] = effect.value  # an indeterminate one need not take effect
            aside.add(i)
            effects.append((NOTHING, NOTHING))
            continue
        effects.append(effect)
        w = effect[1]
        if w is not NOTHING:
            if w in writer:
                return None
            writer[w] = i
    return _Decider(model, entries, effects, writer, init, key, excludes, aside).run()


class _Decider:
    def __init__(self, model: Model, entries: Sequence[Entry], effects: list[tuple[Any, Any]],
                 writer: dict[Any, int], init: Any, key: Any, excludes: dict[int, Any],
                 aside: set[int]):
        self.model = model
        self.entries = entries
        self.effects = effects
        self.writer = writer
        self.init = init
        self.prefix = key_prefix(key)
        self.excludes = excludes
        self.aside = aside
        self.spare: list[int] = []
        self.kept: list[int] = []

    def describe(self, i: int) -> str:
        if i == _INIT:
            return f"the initial value {show(self.init)}"
        e = self.entries[i]
        return f"{self.model.describe_call(e.call)} ({e.invoked_at()} to {e.completed_at()})"

    def invoked(self, i: int) -> str:
        return "the start" if i == _INIT else self.entries[i].invoked_at()

    def completed(self, i: int) -> str:
        return "the start" if i == _INIT else self.entries[i].completed_at()

    def fail(self, culprit: int, why: str, involved: Sequence[int] = ()) -> ZoneVerdict:
        named = sorted(i for i in {culprit, *involved} if i != _INIT)
        return ZoneVerdict(False, kept=self.kept, culprit=culprit, why=self.prefix + why,
                           involved=named)

    def run(self) -> ZoneVerdict | None:
        entries, effects, writer = self.entries, self.effects, self.writer
        n = len(entries)
        readers: dict[Any, list[int]] = {}
        for i, (r, _) in enumerate(effects):
            if r is not NOTHING:
                readers.setdefault(r, []).append(i)

        # 1. Operations needing a value nobody can write never take effect. Those that
        # exclude a value are left out until 6.
        alive = [i not in self.aside for i in range(n)]
        lost = [v for v in readers if v not in writer]
        while lost:
            v = lost.pop()
            for i in readers.get(v, ()):
                if not alive[i]:
                    continue
                if entries[i].completed is not None:
                    return self.fail(i, f"{self.describe(i)} needs {show(v)}, which is neither "
                                     "the initial value nor written by any operation that "
                                     "could take effect")
                alive[i] = False
                w = effects[i][1]
                if w is not NOTHING and writer.get(w) == i:
                    del writer[w]
                    lost.append(w)

        # 2. Needed values; indeterminate operations writing anything else are dropped.
        needed: set[Any] = set()
        stack = [self.init]
        for i, (r, w) in enumerate(effects):
            if alive[i] and entries[i].completed is not None:
                if r is not NOTHING:
                    stack.append(r)
                if w is not NOTHING:
                    stack.append(w)
        while stack:
            v = stack.pop()
            if v in needed:
                continue
            needed.add(v)
            wi = writer[v]
            if wi != _INIT and effects[wi][0] is not NOTHING:
                stack.append(effects[wi][0])
        kept = [i for i in range(n) if alive[i]
                and (entries[i].completed is not None or effects[i][1] in needed)]
        dropped = n - len(kept) - len(self.aside)
        self.kept = kept
        kept_set = set(kept)  # indeterminate writes of values nobody needs, for 6
        self.spare = [i for i in range(n) if alive[i] and i not in kept_set
                      and effects[i][0] is NOTHING and effects[i][1] is not NOTHING]

        # 3. Chains: at most one cas leaves a value.
        successor: dict[Any, int] = {}
        for i in kept:
            r, w = effects[i]
            if r is not NOTHING and w is not NOTHING:
                other = successor.get(r)
                if other is not None:
                    return self.fail(i, f"{self.describe(other)} and {self.describe(i)} both "
                                     f"must take effect, but only one cas can leave "
                                     f"{show(r)}, as it is never written again",
                                     [other, writer[r]])
                successor[r] = i
        reads_of: dict[Any, list[int]] = {}
        for i in kept:
            r, w = effects[i]
            if r is not NOTHING and w is NOTHING:
                reads_of.setdefault(r, []).append(i)
        roots = [self.init] + [effects[i][1] for i in kept
                               if effects[i][0] is NOTHING and effects[i][1] is not NOTHING]
        chains: list[_Chain] = []
        placed: set[Any] = set()
        for root in roots:
            chain = self.chain(root, successor, reads_of)
            if isinstance(chain, ZoneVerdict):
                return chain
            placed.update(chain.values)
            chains.append(chain)
        for v in needed:
            if v not in placed:  # only reachable through a cycle of cas
                who = (reads_of.get(v) or [writer[v]])[0]
                return self.fail(who, f"{self.describe(who)} needs {show(v)}, which only a "
                                 "cas from a value that itself needs it could write")

        # 5. Forward zones disjoint; no backward zone inside a forward one.
        forward = sorted((c for c in chains if c.first_end < c.last_start),
                         key=lambda c: c.first_end)
        for a, b in itertools.pairwise(forward):
            if a.last_start > b.first_end:
                return self.overlap(a, b)
        ends = [c.first_end for c in forward]
        for c in chains:
            if c.first_end < c.last_start:
                continue
            k = bisect.bisect_left(ends, c.last_start) - 1
            if k >= 0 and forward[k].last_start > c.first_end:
                return self.inside(c, forward[k])
        if self.excludes and not self.witness_fits(chains, forward, reads_of):
            return None
        return ZoneVerdict(True, kept=kept, dropped=dropped)

    def witness_fits(self, chains: list[_Chain], forward: list[_Chain],
                     reads_of: dict[Any, list[int]]) -> bool:
        """6. Witnesses of the kept operations; True when in one of them every operation
        excluding a value finds, inside its interval, an instant where the register
        holds another value."""
        orders = (lambda: self.greedy(chains), lambda: self.zone_order(chains, forward, True),
                  lambda: self.zone_order(chains, forward, False))
        return any(self.witness(order(), reads_of) for order in orders)

    def first_start(self, c: _Chain) -> int:
        w = c.ops[0]
        return -2 if w == _INIT else self.entries[w].invoked

    def greedy(self, chains: list[_Chain]) -> list[_Chain]:
        """Chains in an order that keeps every remaining one placeable: next, the one
        whose writer was invoked first, when placing it leaves every other chain room
        (its last operation before their first completion D); else the one that ends
        first, else the one with the first D (docs/checker.md, step 6)."""
        n = len(chains)
        starts = [self.first_start(c) for c in chains]
        by_start = sorted(range(n), key=lambda i: (starts[i], chains[i].first_end))
        by_last = [(c.last_start, c.first_end, i) for i, c in enumerate(chains)]
        by_end = [(c.first_end, i) for i, c in enumerate(chains)]
        heapq.heapify(by_last)
        heapq.heapify(by_end)
        released: list[tuple[float, int]] = []
        done = [False] * n
        order: list[_Chain] = []
        now = -3  # the position of the last instant placed
        k = 0

        def top(heap: list[Any]) -> Any:
            while heap and done[heap[0][-1]]:
                heapq.heappop(heap)
            return heap[0] if heap else None

        def fits(i: int) -> bool:
            end = max(chains[i].last_start, now)
            first = top(by_end)
            if first[1] == i:  # the first D among the others
                heapq.heappop(by_end)
                other = top(by_end)
                heapq.heappush(by_end, first)
                return other is None or end < other[0]
            return end < first[0]

        while len(order) < n:
            while k < n and (done[by_start[k]] or starts[by_start[k]] <= now):
                if not done[by_start[k]]:
                    heapq.heappush(released, (chains[by_start[k]].first_end, by_start[k]))
                k += 1
            r = top(released)
            pick = r[1] if r is not None else by_start[k]
            if not fits(pick):
                pick = top(by_last)[-1]
                if not fits(pick):
                    pick = top(by_end)[1]
            done[pick] = True
            order.append(chains[pick])
            now = max(now, chains[pick].last_start)
        return order

    def zone_order(self, chains: list[_Chain], forward: list[_Chain],
                   late: bool) -> list[_Chain]:
        """The chains ordered by one instant each, as in 5: the earliest, or the latest,
        outside every forward zone, for a backward chain."""
        ends = [c.first_end for c in forward]

        def place(c: _Chain) -> float:
            if c.first_end < c.last_start:
                return c.first_end - 0.25  # its stretch covers [D, L]
            if late:
                t = c.first_end - 0.5
                k = bisect.bisect_right(ends, t) - 1
                if k >= 0 and forward[k].last_start > t:
                    t = forward[k].first_end - 0.5
                return t
            t = c.last_start + 0.5
            k = bisect.bisect_right(ends, t) - 1
            if k >= 0 and forward[k].last_start > t:
                t = forward[k].last_start + 0.5
            return t

        return sorted(chains, key=place)

    def witness(self, order: list[_Chain], reads_of: dict[Any, list[int]]) -> bool:
        """Every kept operation as early as the chain order allows, then spare writes
        where an operation excluding a value needs another; True when it fits and every
        operation excluding a value fits it."""
        entries = self.entries
        # Instants are (position p, k): ordered as the k-th instant in (p, p + 1).
        start: dict[Any, tuple[int, float]] = {}  # value -> its writer's instant
        end: dict[Any, tuple[int, float]] = {}  # value -> the next writer's; none: ∞
        busy: dict[Any, tuple[int, float]] = {}  # value -> its last operation's instant
        last: tuple[int, float] = (-3, 0)
        held: Any = NOTHING
        for c in order:
            for v in c.values:
                w = self.writer[v]
                s, e = (-2, -1) if w == _INIT else (entries[w].invoked, entries[w].completed)
                t = max((s, 0), (last[0], last[1] + 1))
                if e is not None and t[0] >= e:
                    return False  # cannot happen (docs/checker.md, step 6)
                if held is not NOTHING:
                    end[held] = t
                start[v], held, last = t, v, t
                for r in reads_of.get(v, ()):
                    tr = max((entries[r].invoked, 0), (t[0], t[1] + 1))
                    completed = entries[r].completed
                    if completed is not None and tr[0] >= completed:
                        return False
                    last = max(last, tr)
                busy[v] = last

        def fits(i: int, x: Any) -> bool:
            if x not in start:
                return True  # never held
            e_x = end.get(x)
            return start[x][0] >= entries[i].invoked or (
                e_x is not None and e_x[0] < _end(entries[i]))

        # A spare write may end a value x that is last in its chain (the next writer is
        # a write, not a cas from x), after every kept operation needing x.
        ends_chain = {c.values[-1] for c in order}
        spare = iter(self.spare)
        unfit = sorted((i for i, x in self.excludes.items() if not fits(i, x)),
                       key=lambda i: _end(entries[i]))
        for i in unfit:
            x = self.excludes[i]
            if fits(i, x):
                continue
            j = next(spare, None)
            if x not in ends_chain or j is None:
                return False
            b = busy[x]
            s = entries[j].invoked
            t = (s, 0) if s > b[0] else (b[0], b[1] + 0.5)
            nxt = end.get(x)
            if t[0] >= _end(entries[i]) or (nxt is not None and t >= nxt):
                return False
            u = self.effects[j][1]
            end[x] = start[u] = busy[u] = t
            if nxt is not None:
                end[u] = nxt
        return all(fits(i, x) for i, x in self.excludes.items())

    def chain(self, root: Any, successor: dict[Any, int],
              reads_of: dict[Any, list[int]]) -> _Chain | ZoneVerdict:
        """The chain from `root`, checked as in 4 (greedy earliest instants)."""
        entries = self.entries
        w = self.writer[root]
        values = [root]
        ops = [w]
        first_end, first_end_op = (-1.0, _INIT) if w == _INIT else (_INF, w)
        last_start, last_start_op = (-2, _INIT) if w == _INIT else (entries[w].invoked, w)
        # before: the latest invocation among operations that must precede the current
        # value's instant, and who; the current writer's own start counts.
        before, before_op = last_start, last_start_op
        value, writer_op = root, w
        while True:
            # Value `value`, written by writer_op at instant x > before; its readers and
            # its writer must complete after x.
            deadline, deadline_op = (-1.0, _INIT) if writer_op == _INIT else (
                _end(entries[writer_op]), writer_op)
            group = reads_of.get(value, [])
            for r in group:
                if _end(entries[r]) < deadline:
                    deadline, deadline_op = _end(entries[r]), r
            if before >= deadline:
                # The one named comes too late: a read invoked after the value it saw was
                # replaced (a stale read); else the one that completed too early.
                stale = before_op != _INIT and self.effects[before_op][1] is NOTHING
                return self.fail(
                    before_op if stale or deadline_op == _INIT else deadline_op,
                    f"{self.describe(deadline_op)} completed before {self.describe(before_op)} "
                    f"was invoked, yet {show(value)} must be written after the latter took "
                    "effect and before the former did",
                    [*ops, *group, before_op, deadline_op],
                )
            if deadline < first_end:
                first_end, first_end_op = deadline, deadline_op
            ops.extend(group)
            nxt = successor.get(value)
            for r in [*group, *([nxt] if nxt is not None else [])]:
                s = entries[r].invoked
                if s > before:
                    before, before_op = s, r
                if s > last_start:
                    last_start, last_start_op = s, r
            if nxt is None:
                break
            value, writer_op = self.effects[nxt][1], nxt
            values.append(value)
            ops.append(nxt)
            if len(values) > len(entries) + 1:  # a cycle: cannot happen from a root
                break
        return _Chain(values, ops, first_end, first_end_op, last_start, last_start_op)

    def values(self, c: _Chain) -> str:
        shown = [show(v) for v in c.values[:4]]
        more = f" … ({len(c.values) - 4} more)" if len(c.values) > 4 else ""
        return ("value " if len(c.values) == 1 else "values ") + ", ".join(shown) + more

    def overlap(self, a: _Chain, b: _Chain) -> ZoneVerdict:
        # a's zone begins first; the operation invoked at its end (L) comes too late:
        # b's value was already established (a stale read, when it is a read).
        return self.fail(
            a.last_start_op,
            f"{self.describe(a.last_start_op)} comes too late: the register must hold "
            f"{self.values(a)} from {self.completed(a.first_end_op)} (when "
            f"{self.describe(a.first_end_op)} completed) until it was invoked, and "
            f"{self.values(b)} from {self.completed(b.first_end_op)} (when "
            f"{self.describe(b.first_end_op)} completed) to {self.invoked(b.last_start_op)} "
            f"(when {self.describe(b.last_start_op)} was invoked): the two overlap",
            [*_ends(a), *_ends(b)],
        )

    def inside(self, c: _Chain, f: _Chain) -> ZoneVerdict:
        # f's operation at L still needs f's value, though c's must come in between.
        return self.fail(
            f.last_start_op,
            f"{self.describe(f.last_start_op)} comes too late: the register must hold "
            f"{self.values(f)} from {self.completed(f.first_end_op)} (when "
            f"{self.describe(f.first_end_op)} completed) until it was invoked, but "
            f"{self.values(c)} can only hold between {self.invoked(c.last_start_op)} (when "
            f"{self.describe(c.last_start_op)} was invoked) and "
            f"{self.completed(c.first_end_op)} (when {self.describe(c.first_end_op)} "
            "completed), all within that time",
            [*_ends(c), *_ends(f)],
        )


def _ends(c: _Chain) -> tuple[int, int, int]:
    """The operations that pin a chain's zone: its writer, and those at D and at L."""
    return c.ops[0], c.first_end_op, c.last_start_op


def _end(e: Entry) -> float:
    return _INF if e.completed is None else e.completed
