"""The dependency graph: transactions as nodes, edges labelled with the relations
that order them (docs/txn.md, "What is inferred").

Edges live in a networkx DiGraph, each with one integer attribute `rels`, a set of
`Rel` flags. Why each edge exists is not kept (it would cost memory on every edge);
the analysis that made the graph can produce its edges again with their reasons,
which the cycle search asks for only inside strongly connected components.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import networkx as nx

from checker.txn.history import Txn
from checker.txn.rels import Edge, Rel


class DependencyGraph:
    """Transactions (by id) and the relations between them."""

    def __init__(self, nodes: Iterable[int]):
        self.g: nx.DiGraph = nx.DiGraph()
        self.g.add_nodes_from(nodes)
        # networkx's own adjacency dicts (transaction -> successor -> {"rels": int}),
        # used directly: its views cost a call per lookup, which was most of the time
        # spent building a graph of 500,000 edges and searching large components
        self.succ: dict[int, dict[int, dict[str, int]]] = self.g._succ

    def add(self, source: int, target: int, rel: int) -> None:
        if source == target:
            return
        data = self.succ[source].get(target)
        if data is None:
            self.g.add_edge(source, target, rels=rel)
        else:
            data["rels"] |= rel

    def rels(self, source: int, target: int) -> int:
        return int(self.g.succ[source][target]["rels"])

    def add_data_edges(self, edges: Iterable[Edge]) -> None:
        nodes = self.succ
        for e in edges:
            if e.source in nodes and e.target in nodes:
                self.add(e.source, e.target, e.why.rel.value)

    def add_order_edges(self, txns: list[Txn]) -> None:
        for source, target, rel in order_edges(txns, self.succ):
            self.add(source, target, rel.value)

    def components(self) -> list[set[int]]:
        """Strongly connected components with more than one transaction, largest first."""
        found = [c for c in nx.strongly_connected_components(self.g) if len(c) > 1]
        found.sort(key=lambda c: (-len(c), min(c)))
        return found


def order_edges(txns: list[Txn], nodes: Any) -> Iterator[tuple[int, int, Rel]]:
    """Process and realtime edges among the transactions in `nodes`.

    Realtime: the transitive reduction of "completed before began", computed in one
    sweep over the history: the frontier holds the completed transactions no other
    completed transaction follows yet; a transaction that begins follows everything
    in the frontier, and when it completes it takes the place of those it followed.
    Each transaction gets as many edges as the frontier is large (bounded by the
    concurrency), never one per pair. Only `ok` transactions complete: an `info`
    one may take effect at any later time, so nothing follows it.

    Process: each transaction follows the last `ok` transaction of its process.
    """
    events: list[tuple[int, int, Txn]] = []
    for t in txns:
        if t.id not in nodes:
            continue
        events.append((t.invoked, 0, t))
        if t.outcome == "ok" and t.completed is not None:
            events.append((t.completed, 1, t))
    events.sort(key=lambda e: (e[0], e[1]))
    frontier: set[int] = set()
    followed: dict[int, tuple[int, ...]] = {}
    last_ok: dict[Any, int] = {}
    for _, kind, t in events:
        if kind == 0:
            before = tuple(frontier)
            if t.outcome == "ok":
                followed[t.id] = before
            for source in before:
                yield source, t.id, Rel.REALTIME
            prev = last_ok.get(t.process)
            if prev is not None:
                yield prev, t.id, Rel.PROCESS
        else:
            frontier.difference_update(followed.pop(t.id, ()))
            frontier.add(t.id)
            last_ok[t.process] = t.id
