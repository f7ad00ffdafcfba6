"""Counterexamples a person can read.

For a key that is not linearizable: the operation that could not take effect,
the operations concurrent with it, the longest partial linearizations the
search found (with the model state after each operation), a one-line
explanation, and the smallest window of the history that is still not
linearizable, with its real-time order (transitively reduced).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from checker.history import Operation
from checker.models.base import Model, ValueModel, implements, key_prefix
from checker.reduce import reduce
from checker.refute import Refutation
from checker.search import MAX_PATHS, Budget, Entry, SearchResult, search
from checker.zones import ZoneVerdict

WINDOW_SECONDS = 10.0
SHOWN_STEPS = 30
SHOWN_CONCURRENT = 50
GRAPH_MAX_OPS = 300
EXPLAIN_MIN_SECONDS = 0.2
MAX_WINDOW_STATES = 64  # a window that must fail from more starting states is not tried


def explain_budget(budget: Budget, check_started: float, asked: bool | float = True) -> Budget:
    """What explaining may spend: as long as the check took (at least
    EXPLAIN_MIN_SECONDS, or `asked` seconds when a number), never past the check's
    own deadline."""
    now = time.monotonic()
    floor = EXPLAIN_MIN_SECONDS if asked is True else float(asked)
    deadline = now + max(now - check_started, floor)
    if budget.deadline is not None:
        deadline = min(deadline, budget.deadline)
    return Budget(deadline, budget.max_rss_bytes)


@dataclass
class DescribedOp:
    """One operation as a counterexample shows it."""

    description: str  # the call, as the model words it
    invoked: int  # history positions, as in Operation
    completed: int | None
    operation: Operation | None = None  # as recorded, when known

    @property
    def process(self) -> int | str | None:
        return None if self.operation is None else self.operation.process

    @property
    def result(self) -> str | None:
        """ok, fail or info, when the operation is known."""
        return None if self.operation is None else self.operation.outcome

    def where(self) -> str:
        """Its place in the file: its lines when known (1-based), else its indexes."""
        op = self.operation
        if op is not None and op.line is not None:
            end = op.completed_line
            return f"lines {op.line}..{end if end is not None else 'end (no completion)'}"
        end = self.completed
        return f"indexes {self.invoked}..{end if end is not None else 'end'}"

    def to_json(self) -> dict[str, Any]:
        out = self.operation.to_json() if self.operation is not None else {
            "invoke_index": self.invoked, "complete_index": self.completed}
        out["description"] = self.description
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DescribedOp:
        operation = Operation.from_json(data) if "process" in data else None
        return cls(data["description"], data["invoke_index"], data.get("complete_index"),
                   operation)


@dataclass
class Step:
    op: DescribedOp
    state: str  # the model state after it, described

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op.to_json(), "state": self.state}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(DescribedOp.from_json(data["op"]), data["state"])


@dataclass
class PartialLinearization:
    """A prefix the search could linearize, from `initial`; only its last steps kept."""

    initial: str
    length: int  # operations linearized
    omitted: int  # of those, not in `steps`
    steps: list[Step]
    from_history_start: bool = True  # False: from `initial` at the window's start

    def to_json(self) -> dict[str, Any]:
        return {"initial": self.initial, "length": self.length, "omitted": self.omitted,
                "from_history_start": self.from_history_start,
                "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartialLinearization:
        return cls(data["initial"], data["length"], data["omitted"],
                   [Step.from_json(s) for s in data["steps"]],
                   data.get("from_history_start", True))

    def origin(self) -> str:
        if self.from_history_start:
            return f"the initial state {self.initial}"
        return f"state {self.initial} at the window's start"


@dataclass
class Proof:
    """What decided the key without a search: a refutation's two operations, or the
    zone procedure's one line."""

    destroyer: DescribedOp | None = None
    last_producer: DescribedOp | None = None
    zones: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.zones is not None:
            return {"zones": self.zones}
        return {"destroyer": None if self.destroyer is None else self.destroyer.to_json(),
                "last_producer": None if self.last_producer is None
                else self.last_producer.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proof:
        if "zones" in data:
            return cls(zones=data["zones"])
        destroyer, producer = data.get("destroyer"), data.get("last_producer")
        return cls(destroyer=None if destroyer is None else DescribedOp.from_json(destroyer),
                   last_producer=None if producer is None else DescribedOp.from_json(producer))

    def ops(self) -> list[DescribedOp]:
        """The operations the proof names."""
        return [o for o in (self.destroyer, self.last_producer) if o is not None]


def describe(model: Model, entry: Entry) -> DescribedOp:
    ref = entry.ref if isinstance(entry.ref, Operation) else None
    call = entry.shown if entry.shown is not None else entry.call
    return DescribedOp(model.describe_call(call), entry.invoked, entry.completed, ref)


def concurrent_with(entries: Sequence[Entry], c: int) -> list[int]:
    me = entries[c]
    end = me.completed if me.completed is not None else float("inf")
    return [
        i
        for i, e in enumerate(entries)
        if i != c and e.invoked < end and (e.completed is None or e.completed > me.invoked)
    ]


def replay(model: Model, entries: Sequence[Entry], path: Sequence[int],
           initial: Any, from_history_start: bool = True) -> PartialLinearization:
    state = initial
    states = []
    for i in path:
        e = entries[i]
        state = model.step(state, e.shown if e.shown is not None else e.call)
        states.append(state)
    first = max(0, len(path) - SHOWN_STEPS)
    steps = [Step(describe(model, entries[i]), model.describe_state(st))
             for i, st in zip(path[first:], states[first:], strict=True)]
    return PartialLinearization(model.describe_state(initial), len(path), first, steps,
                                from_history_start)


@dataclass(frozen=True)
class Span:
    """The operations of a window: entries[first:stop], and `carried`: those invoked
    before entries[first] and still running then. A carried operation may have taken
    effect before the window (its effect is then in the state the window starts from)
    or inside it, or, when it never completed, never: in the window it is indeterminate."""

    first: int
    stop: int
    from_any_state: bool
    carried: tuple[int, ...] = ()

    def indexes(self) -> list[int]:
        return [*self.carried, *range(self.first, self.stop)]

    def searched(self, entries: Sequence[Entry]) -> list[Entry]:
        """The window as the search takes it, sorted by invocation."""
        return [*(replace(entries[j], completed=None) for j in self.carried),
                *entries[self.first:self.stop]]


def span(model: Model, entries: Sequence[Entry], first: int, stop: int) -> Span:
    """The window from `first` to `stop`, from every state, with the operations it carries:
    every one still running when entries[first] was invoked, except read-only ones (as
    indeterminate operations they constrain nothing) and, of those that never
    completed, all but one per distinct call writing a value some operation of the
    window observes (for single-value models; for others none: a cut the window may
    show)."""
    if first == 0:
        return Span(0, stop, True)
    at = entries[first].invoked
    observed: set[Any] | None = None
    if implements(model, ValueModel):
        observed = set()
        for e in entries[first:stop]:
            observed.update(model.observes(e.call))  # type: ignore[attr-defined]
    carried = []
    pending: set[Any] = set()
    for j in range(first):
        e = entries[j]
        if model.read_only(e.call):
            continue
        if e.completed is not None:
            if e.completed > at:
                carried.append(j)
        elif observed is not None and e.call not in pending and any(
                v in observed for v in model.provides(e.call)):  # type: ignore[attr-defined]
            pending.add(e.call)
            carried.append(j)
    return Span(first, stop, True, tuple(carried))


def window_fails(model: Model, window: Sequence[Entry], initial: Sequence[Any],
                 budget: Budget) -> bool:
    """True when the window linearizes from none of the `initial` states; False when
    that cannot be shown within the budget (or from too many states to try)."""
    if len(initial) > MAX_WINDOW_STATES:
        return False
    for state in initial:
        if budget.exceeded() is not None or search(model, window, state, budget).valid is not False:
            return False
    return True


def find_window(model: Model, entries: Sequence[Entry], c: int, budget: Budget,
                stop: int | None = None, latest: int | None = None,
                carry: bool = False) -> Span:
    """A window that is not linearizable: from every state (a Span from `span`), or the
    prefix entries[:stop] from the initial state.

    By default the window ends with the last operation invoked before the culprit
    `c` completed and starts at or before `c` (`stop` and `latest` override both).
    Windows from every state they could start in come first, as they are small and
    cheap: starting ever further back from `latest` (1, 2, 4, … operations), then
    bisected; each verified by the search. Without one, the prefix up to `stop`
    from the initial state, verified too; without that, the whole history, from the
    initial state (the caller's proof covers it). With `carry`, windows carry the
    operations still running when they start (see `span`): truer, and dearer to find.
    """
    if stop is None:
        end = entries[c].completed
        stop = len(entries) if end is None else bisect.bisect_left(
            [e.invoked for e in entries], end)
        stop = max(stop, c + 1)
    latest = c if latest is None else latest
    if latest > 0:
        floor = _few_states_from(model, entries, latest, stop)

        def cut(mid: int) -> Span:
            return span(model, entries, mid, stop) if carry else Span(mid, stop, True)

        def fails(mid: int) -> bool | None:
            window = cut(mid).searched(entries)
            starts = model.initial_states([e.call for e in window])
            if starts is None:
                return None
            reduced, _ = reduce(model, window, deadlines=False)
            return window_fails(model, reduced, starts, budget)

        # Grow by doubling from `latest` until one fails, then bisect between it and
        # the last that did not.
        passed, step, found = latest + 1, 1, -1
        while budget.exceeded() is None:
            mid = max(latest - step + 1, floor, 1)
            verdict = fails(mid)
            if verdict is None:
                break
            if verdict:
                found = mid
                break
            passed = mid
            if mid <= max(floor, 1):
                break
            step *= 2
        if found >= 0:
            lo, hi = found, passed - 1
            while lo < hi and budget.exceeded() is None:
                mid = (lo + hi + 1) // 2
                if fails(mid):
                    lo = mid
                else:
                    hi = mid - 1
            return cut(lo)
    if stop < len(entries) and window_fails(model, entries[:stop], [model.init()], budget):
        return Span(0, stop, False)
    return Span(0, len(entries), False)


def _few_states_from(model: Model, entries: Sequence[Entry], c: int, stop: int) -> int:
    """The earliest start (at most c) of a window ending at `stop` that would start from
    at most MAX_WINDOW_STATES states (the fewer operations, the fewer values)."""
    lo, hi = 1, c
    while lo < hi:
        mid = (lo + hi) // 2
        starts = model.initial_states([e.call for e in entries[mid:stop]])
        if starts is not None and len(starts) <= MAX_WINDOW_STATES:
            hi = mid
        else:
            lo = mid + 1
    return lo


def real_time_order(window: Sequence[Entry]) -> list[list[int]]:
    """Edges a→b (invocation indexes): a completed before b was invoked; transitively reduced.

    Real-time order is an interval order, so a→b is implied by another path exactly
    when some c was invoked after a completed and completed before b was invoked:
    a→b stays iff b was invoked before the earliest completion among the ops invoked
    after a completed."""
    done = sorted((e.invoked, e.completed) for e in window if e.completed is not None)
    starts = sorted(e.invoked for e in window)
    # earliest[k]: the earliest completion among determinate ops invoked at or after
    # the k-th of `done` by invocation
    done_starts = [s for s, _ in done]
    earliest = [0] * (len(done) + 1)
    earliest[len(done)] = 2**62
    for k in range(len(done) - 1, -1, -1):
        earliest[k] = min(done[k][1], earliest[k + 1])
    edges = []
    for a_start, a_end in done:
        limit = earliest[bisect.bisect_right(done_starts, a_end)]
        lo = bisect.bisect_right(starts, a_end)
        hi = bisect.bisect_left(starts, limit)
        edges.extend([a_start, b] for b in starts[lo:hi])
    return sorted(edges)


def _window_budget(budget: Budget) -> Budget:
    deadline = time.monotonic() + WINDOW_SECONDS
    if budget.deadline is not None:
        deadline = min(deadline, budget.deadline)
    return Budget(deadline, budget.max_rss_bytes)


@dataclass
class Window:
    """The smallest stretch of the history found that still is not linearizable."""

    first_index: int
    last_index: int
    initial: str  # "init": from the model's initial state; "any": from every state
    ops: list[DescribedOp]
    order: list[list[int]] | None  # real-time order among them (None: too many to draw)
    verified: bool = True  # False: the explanation budget ran out before one was

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"first_index": self.first_index, "last_index": self.last_index,
                               "initial": self.initial,
                               "ops": [op.to_json() for op in self.ops], "order": self.order}
        if not self.verified:
            out["verified"] = False
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(data["first_index"], data["last_index"], data["initial"],
                   [DescribedOp.from_json(o) for o in data["ops"]], data.get("order"),
                   data.get("verified", True))


@dataclass
class Counterexample:
    """Why one key is not linearizable, for a person (see docs/history.md)."""

    op: DescribedOp  # the operation that could not take effect
    explanation: str
    possible_states: list[str]
    concurrent: list[DescribedOp]
    concurrent_omitted: int
    partial_linearizations: list[PartialLinearization]
    window: Window
    proof: Proof | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "op": self.op.to_json(),
            "explanation": self.explanation,
            "possible_states": self.possible_states,
            "concurrent": [op.to_json() for op in self.concurrent],
            "concurrent_omitted": self.concurrent_omitted,
            "partial_linearizations": [p.to_json() for p in self.partial_linearizations],
            "window": self.window.to_json(),
        }
        if self.proof is not None:
            out["proof"] = self.proof.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counterexample:
        proof = data.get("proof")
        return cls(
            op=DescribedOp.from_json(data["op"]),
            explanation=data["explanation"],
            possible_states=list(data["possible_states"]),
            concurrent=[DescribedOp.from_json(o) for o in data["concurrent"]],
            concurrent_omitted=data["concurrent_omitted"],
            partial_linearizations=[PartialLinearization.from_json(p)
                                    for p in data["partial_linearizations"]],
            window=Window.from_json(data["window"]),
            proof=None if proof is None else Proof.from_json(proof),
        )

    def summary(self) -> Summary:
        return Summary(self.op, self.explanation)


@dataclass
class Summary:
    """A counterexample in one line: the operation that could not take effect, and why.
    results.json keeps one for every invalid key, the full counterexample for a few."""

    op: DescribedOp
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op.to_json(), "explanation": self.explanation}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        return cls(DescribedOp.from_json(data["op"]), data["explanation"])


def _report(
    model: Model,
    key: Any,
    entries: Sequence[Entry],
    culprit: int,
    explanation: str,
    states: Sequence[Any],
    paths: Sequence[tuple[Any, Sequence[int]]],
    window: Span,
    from_history_start: bool = True,
) -> Counterexample:
    others = concurrent_with(entries, culprit)
    ordered = sorted(paths, key=lambda p: len(p[1]), reverse=True)
    any_state = window.from_any_state
    ops = [entries[i] for i in window.indexes()]
    return Counterexample(
        op=describe(model, entries[culprit]),
        explanation=explanation,
        possible_states=[model.describe_state(s) for s in states],
        concurrent=[describe(model, entries[i]) for i in others[:SHOWN_CONCURRENT]],
        concurrent_omitted=max(0, len(others) - SHOWN_CONCURRENT),
        partial_linearizations=[replay(model, entries, p, s, from_history_start)
                                for s, p in ordered],
        window=Window(
            first_index=ops[0].invoked,
            last_index=max(e.completed if e.completed is not None else e.invoked for e in ops),
            initial="any" if any_state else "init",
            ops=[describe(model, e) for e in ops],
            order=real_time_order(ops) if len(ops) <= GRAPH_MAX_OPS else None,
        ),
    )


def counterexample(
    model: Model, key: Any, entries: Sequence[Entry], outcome: SearchResult, budget: Budget
) -> Counterexample:
    """From a search that failed: the op at its furthest point and what it saw there."""
    stuck = outcome.stuck
    culprit = stuck.op if stuck is not None else len(entries) - 1
    states = stuck.states if stuck is not None else []
    paths = [(model.init(), p) for p in stuck.paths] if stuck is not None else []
    explanation = model.explain(entries[culprit].call, states, key)
    window = find_window(model, entries, culprit, _window_budget(budget))
    return _report(model, key, entries, culprit, explanation, states, paths, window)


def refutation_summary(model: Model, key: Any, entries: Sequence[Entry],
                       proof: Refutation) -> Summary:
    """What refutation_counterexample would say in one line, without a window."""
    return Summary(describe(model, entries[proof.culprit]), f"{key_prefix(key)}{proof.why}")


def zone_summary(model: Model, key: Any, entries: Sequence[Entry],
                 verdict: ZoneVerdict) -> Summary:
    """What zone_counterexample leads with, without a window."""
    culprit = verdict.culprit if verdict.culprit is not None and verdict.culprit >= 0 else 0
    return Summary(describe(model, entries[culprit]),
                   verdict.why or f"{key_prefix(key)}not linearizable")


def search_summary(model: Model, key: Any, entries: Sequence[Entry],
                   outcome: SearchResult) -> Summary:
    """What counterexample would say in one line, without a window."""
    stuck = outcome.stuck
    culprit = stuck.op if stuck is not None else len(entries) - 1
    states = stuck.states if stuck is not None else []
    return Summary(describe(model, entries[culprit]),
                   model.explain(entries[culprit].call, states, key))


def refutation_counterexample(
    model: Model, key: Any, entries: Sequence[Entry], proof: Refutation, budget: Budget
) -> Counterexample:
    """From a refutation: its proof, and a search of its window for partial linearizations."""
    first, stop = proof.window
    result = _window_counterexample(model, key, entries, proof.culprit,
                                    f"{key_prefix(key)}{proof.why}",
                                    Span(first, stop, proof.from_any_state), budget)
    result.proof = Proof(
        destroyer=None if proof.destroyer is None else describe(model, entries[proof.destroyer]),
        last_producer=None if proof.producer is None else describe(model,
                                                                   entries[proof.producer]),
    )
    return result


def zone_counterexample(
    model: Model, key: Any, entries: Sequence[Entry], verdict: ZoneVerdict, budget: Budget
) -> Counterexample:
    """From the zone procedure: its one-line proof, and a window around the operations
    it names, verified by a search, with the search's partial linearizations. Without
    one, a search of every operation that must take effect, if it fails in time."""
    culprit = verdict.culprit if verdict.culprit is not None and verdict.culprit >= 0 else 0
    explanation = verdict.why or f"{key_prefix(key)}not linearizable"
    small = _window_budget(budget)
    involved = verdict.involved or [culprit]  # sorted; the culprit among them
    window = find_window(model, entries, culprit, small, stop=involved[-1] + 1,
                         latest=involved[0], carry=True)
    if window.from_any_state:
        result = _window_counterexample(model, key, entries, culprit, explanation, window,
                                        small, restate=True)
        result.proof = Proof(zones=verdict.why)
        return result
    kept = [entries[i] for i in verdict.kept] if verdict.kept else list(entries)
    outcome = search(model, kept, model.init(), small)
    if outcome.valid is False:
        result = counterexample(model, key, kept, outcome, budget)
        result.proof = Proof(zones=verdict.why)
        return result
    result = _report(model, key, entries, culprit, explanation, [], [],
                     Span(0, len(entries), False))
    result.window.verified = False
    result.proof = Proof(zones=verdict.why)
    return result


def _window_counterexample(model: Model, key: Any, entries: Sequence[Entry], culprit: int,
                           explanation: str, window: Span,
                           budget: Budget, restate: bool = False) -> Counterexample:
    """A proof's counterexample: `window` is known not to linearize; a search of it
    from its starting states gives the states the culprit met and partial
    linearizations (those stuck at the culprit first). With `restate`, when the search
    got stuck at the culprit, the explanation becomes the model's: why the culprit
    fits none of the states it met there."""
    from_any_state = window.from_any_state
    ops = window.searched(entries)
    where = window.indexes()  # entry index of each of ops
    starts = model.initial_states([e.call for e in ops]) if from_any_state else None
    starts = (starts or [model.init()])[:MAX_WINDOW_STATES]
    states: list[Any] = []
    at_culprit: list[tuple[Any, list[int]]] = []
    elsewhere: list[tuple[Any, list[int]]] = []
    small = _window_budget(budget)
    reduced, kept = reduce(model, ops, deadlines=False)
    for initial in starts:
        if small.exceeded() is not None:
            break
        outcome = search(model, reduced, initial, small)
        stuck = outcome.stuck
        if outcome.valid is not False or stuck is None:
            continue
        found = [(initial, [where[kept[i]] for i in p]) for p in stuck.paths[:1]]
        if where[kept[stuck.op]] == culprit:
            states.extend(s for s in stuck.states if s not in states)
            at_culprit.extend(found)
        else:
            elsewhere.extend(found)
    if restate and states:
        explanation = model.explain(entries[culprit].call, states, key)
    paths = sorted(at_culprit or elsewhere, key=lambda p: -len(p[1]))[:MAX_PATHS]
    return _report(model, key, entries, culprit, explanation, states, paths, window,
                   from_history_start=window.first == 0 and not from_any_state)
