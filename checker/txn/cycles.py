"""Cycle anomalies: inside each strongly connected component of the dependency
graph, a shortest cycle of each kind (docs/txn.md, "Anomalies").

A search for one kind fixes the cycle's first edge (one with the relation that
kind needs: an rw edge for G-single, a realtime edge for the -realtime variants…)
and looks for a shortest path back with a breadth-first search over states
(transaction, rw edges so far, whether the last edge was rw), which enforces the
kind's rule on rw edges: none (G0, G1c), exactly one (G-single), never two in a
row (G-nonadjacent), any (G2-item). Each cycle found is then named by the edges it
actually uses, so a search never mislabels what it finds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Final, Literal

import networkx as nx

from checker.txn.graph import DependencyGraph
from checker.txn.history import Txn
from checker.txn.models import implied_anomalies
from checker.txn.rels import DATA_RELS, Rel

RwRule = Literal["none", "one", "nonadjacent", "some"]
MAX_STARTS: Final = 64  # first edges tried per search and component
_ORDER: Final = (Rel.WW, Rel.WR, Rel.PROCESS, Rel.REALTIME)  # preferred labels, non-rw


@dataclass(frozen=True)
class Search:
    name: str
    path: Rel  # relations the cycle may use
    first: Rel  # the relation of the cycle's first edge
    rw: RwRule


def _searches() -> list[Search]:
    out = []
    for suffix, extra, first in (("", Rel(0), None), ("-process", Rel.PROCESS, Rel.PROCESS),
                                 ("-realtime", Rel.PROCESS | Rel.REALTIME, Rel.REALTIME)):
        out += [
            Search("G0" + suffix, Rel.WW | extra, first or Rel.WW, "none"),
            Search("G1c" + suffix, Rel.WW | Rel.WR | extra, first or Rel.WR, "none"),
            Search("G-single" + suffix, DATA_RELS | extra, first or Rel.RW, "one"),
            Search("G-nonadjacent" + suffix, DATA_RELS | extra, first or Rel.RW, "nonadjacent"),
            Search("G2-item" + suffix, DATA_RELS | extra, first or Rel.RW, "some"),
        ]
    return out


SEARCHES: Final = _searches()

Cycle = list[tuple[int, int, Rel]]  # (source, target, the relation used)


def classify(cycle: Cycle) -> str:
    """The anomaly a cycle shows, from the relations of its edges."""
    used = [rel for _, _, rel in cycle]
    suffix = ("-realtime" if Rel.REALTIME in used else
              "-process" if Rel.PROCESS in used else "")
    rws = [rel == Rel.RW for rel in used]
    n = sum(rws)
    if n == 0:
        base = "G1c" if Rel.WR in used else "G0"
    elif n == 1:
        base = "G-single"
    elif any(rws[i] and rws[i - 1] for i in range(len(rws))):
        base = "G2-item"
    else:
        base = "G-nonadjacent"
    return base + suffix


@dataclass
class ComponentCycles:
    cycles: dict[str, Cycle]  # anomaly name -> a shortest cycle found for it
    complete: bool  # every search ran to its end


def find_cycles(graph: DependencyGraph, component: set[int], txns: Sequence[Txn],
                deadline: float | None = None) -> ComponentCycles:
    """A shortest cycle of each kind found in one strongly connected component.
    `txns`: the history's transactions by id (realtime cycles are shortened with them)."""
    found: dict[str, Cycle] = {}
    complete = True
    parts: dict[Rel, dict[int, int]] = {}  # the searches' relations -> sub-components
    for search in SEARCHES:
        if search.name in implied_anomalies(found) - set(found):
            continue  # implied by a worse anomaly found already
        if deadline is not None and time.monotonic() > deadline:
            complete = False
            break
        if search.path not in parts:
            parts[search.path] = _parts(graph, component, search.path)
        starts = list(islice(_starts(graph, parts[search.path], search.first),
                             MAX_STARTS + 1))
        best: Cycle | None = None
        for a, b in starts[:MAX_STARTS]:
            if deadline is not None and time.monotonic() > deadline:
                complete = False
                break
            limit = len(best) - 1 if best is not None else None
            cycle = _shortest_back(graph.succ, component, search, a, b, limit)
            if cycle is not None:
                best = cycle
                if len(best) == 2:
                    break
        if best is not None:
            best = _relabel_first(graph, best)
            if classify(best).endswith("-realtime"):
                best = shorten_realtime(best, txns)
            found.setdefault(classify(best), best)
        elif len(starts) > MAX_STARTS:
            complete = False  # such a cycle may start at an edge not tried
    if not found:  # out of time or starts: any cycle at all still proves the component
        cycle = any_cycle(graph, component)
        found[classify(cycle)] = cycle
    return ComponentCycles(found, complete)


def shorten_realtime(cycle: Cycle, txns: Sequence[Txn]) -> Cycle:
    """The cycle with each run of non-rw edges replaced by one realtime edge where the
    run's first transaction completed before its last began.

    The graph keeps only the transitive reduction of realtime order, so a search can
    only cross a long stretch of the history in many small steps; the order holds
    directly between the ends, which is shorter to read and to check. The rw edges,
    and so the anomaly's kind, stay as they were; used only on cycles that already
    have a realtime edge, so that no claim gets weaker."""
    n = len(cycle)
    if n <= 2:
        return cycle
    # start right after an rw edge, so that no run of non-rw edges wraps around
    k = next((i for i, (_, _, rel) in enumerate(cycle) if rel == Rel.RW), n - 1)
    ring = cycle[k + 1:] + cycle[: k + 1]
    nodes = [a for a, _, _ in ring]
    out: Cycle = []
    i = 0
    while i < n:
        a = txns[nodes[i]]
        jump = None
        j = i
        while j < n and ring[j][2] != Rel.RW:
            j += 1
            b = txns[nodes[j % n]]
            if (j - i >= 2 and b.id != a.id and a.completed is not None
                    and a.completed < b.invoked):
                jump = j
        if jump is None:
            out.append(ring[i])
            i += 1
        else:
            out.append((a.id, nodes[jump % n], Rel.REALTIME))
            i = jump
    return out


def _parts(graph: DependencyGraph, component: set[int], rels: Rel) -> dict[int, int]:
    """Each transaction of the component that lies on a cycle of `rels` edges, mapped
    to its strongly connected component in the subgraph of those edges."""
    succ = graph.succ
    sub = nx.DiGraph()
    for a in component:
        for b, data in succ[a].items():
            if b in component and data["rels"] & rels:
                sub.add_edge(a, b)
    where: dict[int, int] = {}
    for i, c in enumerate(nx.strongly_connected_components(sub)):
        if len(c) > 1:
            for n in c:
                where[n] = i
    return where


def _starts(graph: DependencyGraph, where: dict[int, int], first: Rel
            ) -> Iterator[tuple[int, int]]:
    """First edges that can lie on a cycle of the search's relations: both ends in one
    strongly connected component of the subgraph of those relations."""
    succ = graph.succ
    for a in sorted(where):
        for b in sorted(succ[a]):
            if where.get(b) == where[a] and succ[a][b]["rels"] & first:
                yield a, b


_RW: Final = Rel.RW.value
# for each set of relations (as an int), the label a non-rw step takes: the first of
# _ORDER present, or 0 when there is none
_OTHER: Final = tuple(next((r.value for r in _ORDER if rels & r), 0) for rels in range(32))


def _shortest_back(succ: dict[int, dict[int, dict[str, int]]], component: set[int],
                   search: Search, a: int, b: int, limit: int | None) -> Cycle | None:
    """The shortest cycle a -> b -> … -> a obeying the search's rule, or None.

    `limit`: only cycles of at most this many edges are of interest. Relations are
    plain ints here: this loop is most of the time a large component costs."""
    first = search.first
    rw0 = 1 if first == Rel.RW else 0
    start = (b, rw0, rw0 == 1)
    parent: dict[tuple[int, int, bool], tuple[tuple[int, int, bool], int] | None] = {
        start: None}
    depth = {start: 1}
    queue = deque([start])
    rule = search.rw
    allowed = search.path.value
    other_of = _OTHER
    while queue:
        state = queue.popleft()
        node, rws, last_rw = state
        d = depth[state]
        if node == a:
            if _accept(rule, rws, last_rw and rw0 == 1):
                return _unwind(parent, state, a, b, first)
            continue
        if limit is not None and d >= limit:
            continue
        may_rw = _may_add_rw(rule, rws, last_rw)
        for nxt, data in succ[node].items():
            if nxt not in component:
                continue
            rels = data["rels"] & allowed
            if not rels:
                continue
            other = other_of[rels]
            if other:
                new = (nxt, rws, False)
                if new not in parent:
                    parent[new] = (state, other)
                    depth[new] = d + 1
                    queue.append(new)
            if rels & _RW and may_rw:
                new = (nxt, min(rws + 1, 2), True)
                if new not in parent:
                    parent[new] = (state, _RW)
                    depth[new] = d + 1
                    queue.append(new)
    return None


def _may_add_rw(rule: RwRule, rws: int, last_rw: bool) -> bool:
    if rule == "none":
        return False
    if rule == "one":
        return rws == 0
    if rule == "nonadjacent":
        return not last_rw
    return True


def _accept(rule: RwRule, rws: int, wraps_rw: bool) -> bool:
    if rule == "none":
        return rws == 0
    if rule == "one":
        return rws == 1
    if rule == "nonadjacent":
        return rws >= 2 and not wraps_rw
    return rws >= 1


def _unwind(parent: dict, state: tuple[int, int, bool], a: int, b: int, first: Rel) -> Cycle:
    back: Cycle = []
    while parent[state] is not None:
        prev, rel = parent[state]
        back.append((prev[0], state[0], Rel(rel)))
        state = prev
    back.reverse()
    return [(a, b, first), *back]


def _relabel_first(graph: DependencyGraph, cycle: Cycle) -> Cycle:
    """A first edge taken for its process or realtime order, shown by the most telling
    relation it has that keeps the cycle's rw edges as they are."""
    a, b, rel = cycle[0]
    if rel in (Rel.PROCESS, Rel.REALTIME):
        rels = graph.rels(a, b)
        rel = next(r for r in _ORDER if rels & r)
    return [(a, b, rel), *cycle[1:]]


def any_cycle(graph: DependencyGraph, component: set[int]) -> Cycle:
    """Some cycle in the component, each edge labelled with its most telling relation."""
    sub = graph.g.subgraph(component)
    out: Cycle = []
    for a, b in (e[:2] for e in nx.find_cycle(sub)):
        rels = graph.rels(a, b)
        rel = next(r for r in (Rel.WW, Rel.WR, Rel.RW, Rel.PROCESS, Rel.REALTIME) if rels & r)
        out.append((a, b, rel))
    return out
