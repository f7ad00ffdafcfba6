"""Checking a transactional history: the analysis, the graph, the cycles, the verdict."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from checker.formats import read_ops
from checker.history import HistoryError, pair
from checker.txn.append import ListAppend
from checker.txn.cycles import Cycle, classify, find_cycles
from checker.txn.explain import edge_text, name_txns
from checker.txn.graph import DependencyGraph
from checker.txn.history import Txn, Workload, transactions
from checker.txn.models import (
    DEFAULT_MODELS,
    boundary,
    forbidden_by,
    implied_anomalies,
    unknown_models,
)
from checker.txn.register import RwRegister
from checker.txn.rels import DATA_RELS, Edge, Rel, Why
from checker.txn.result import Anomaly, GraphStats, Step, TxnResult, Verdict

MAX_KEPT: Final = 8  # witnesses kept (and explained) per anomaly; all are counted


class Analysis(Protocol):
    """What a workload's analysis gives the check (append.py, register.py)."""

    def nodes(self) -> set[int]:
        """The transactions known to have committed."""
        ...

    def anomalies(self) -> list[Anomaly]:
        """Every anomaly found without the graph."""
        ...

    def edges(self) -> Iterator[Edge]:
        """The ww, wr and rw edges, each with its evidence; the same on every call."""
        ...


@dataclass
class TxnFileResult:
    file: str
    format: str
    result: TxnResult

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, **self.result.to_json()}


def check_file(path: str, workload: Workload, models: Sequence[str] = DEFAULT_MODELS,
               fmt: str = "auto", time_limit: float | None = None) -> TxnFileResult:
    """Read a history file (jsonl or Jepsen EDN) and check its transactions."""
    try:
        with open(path, encoding="utf-8", errors="strict") as stream:
            used, ops = read_ops(stream, path, fmt)
            txns = transactions(pair(ops, path), workload, path)
    except UnicodeDecodeError as e:
        raise HistoryError(f"not UTF-8 text: {e.reason} at byte {e.start}", path) from None
    except OSError as e:
        raise HistoryError(f"cannot read: {e.strerror or e}", path) from None
    return TxnFileResult(path, used, check_transactions(txns, workload, models, time_limit,
                                                        path))


def check_transactions(txns: list[Txn], workload: Workload,
                       models: Sequence[str] = DEFAULT_MODELS,
                       time_limit: float | None = None,
                       source: str | None = None) -> TxnResult:
    """The verdict on `txns` for `models`; `time_limit` bounds the cycle search (past
    it the verdict is unknown unless an anomaly the models forbid was found)."""
    start = time.monotonic()
    unknown = unknown_models(models)
    if unknown:
        raise ValueError(f"unknown consistency model {unknown[0]!r}")
    analysis: Analysis = (ListAppend(txns, source) if workload == "append"
                          else RwRegister(txns, source))
    found = analysis.anomalies()
    graph = DependencyGraph(sorted(analysis.nodes()))
    graph.add_data_edges(analysis.edges())
    graph.add_order_edges(txns)
    components = graph.components()
    deadline = start + time_limit if time_limit is not None else None
    complete = True
    cycles: list[Cycle] = []
    for component in components:
        result = find_cycles(graph, component, txns, deadline)
        complete = complete and result.complete
        cycles.extend(result.cycles.values())
    counts = Counter(a.name for a in found)
    counts.update(classify(c) for c in cycles)
    kept: list[Anomaly] = []
    per_name: Counter[str] = Counter()
    for a in found:
        per_name[a.name] += 1
        if per_name[a.name] <= MAX_KEPT:
            kept.append(a)
    chosen = []
    for c in cycles:
        name = classify(c)
        per_name[name] += 1
        if per_name[name] <= MAX_KEPT:
            chosen.append(c)
    reasons = _reasons(analysis, chosen)
    kept.extend(_cycle_anomaly(workload, txns, c, reasons) for c in chosen)
    forbidden = forbidden_by(models)
    if implied_anomalies(counts) & forbidden:
        verdict = Verdict.INVALID
    elif not complete:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.VALID
    b = boundary(counts)
    return TxnResult(
        workload=workload,
        models=tuple(models),
        verdict=verdict,
        txns=len(txns),
        anomalies=kept,
        counts=dict(counts),
        not_models=b.not_,
        also_not=b.also_not,
        strongest_satisfied=b.strongest_satisfied,
        incomplete=None if complete else (
            "the cycle search ran out of time or tried only some edges of a large "
            "component: other cycle anomalies may exist"),
        seconds=time.monotonic() - start,
        graph=GraphStats(graph.g.number_of_nodes(), graph.g.number_of_edges(),
                         len(components), max((len(c) for c in components), default=0)),
    )


def _reasons(analysis: Analysis, cycles: list[Cycle]
             ) -> dict[tuple[int, int, Rel], Why]:
    """The evidence for each data edge of the cycles, from a second pass over the
    analysis's edges (the graph keeps only labels)."""
    needed = {(a, b, rel) for c in cycles for a, b, rel in c if rel & DATA_RELS}
    out: dict[tuple[int, int, Rel], Why] = {}
    if not needed:
        return out
    for e in analysis.edges():
        k = (e.source, e.target, e.why.rel)
        if k in needed and k not in out:
            out[k] = e.why
            if len(out) == len(needed):
                break
    return out


def _cycle_anomaly(workload: str, txns: list[Txn], cycle: Cycle,
                   reasons: dict[tuple[int, int, Rel], Why]) -> Anomaly:
    order = [a for a, _, _ in cycle]
    index = {t: i for i, t in enumerate(order)}
    members = tuple(txns[t] for t in order)
    steps = []
    for a, b, rel in cycle:
        why = reasons.get((a, b, rel), Why(rel))
        i, j = index[a], index[b]
        text = edge_text(workload, f"T{i + 1}", f"T{j + 1}", txns[a], txns[b], why)
        steps.append(Step(i, j, why, text))
    chain = " < ".join(f"T{i + 1}" for i in range(len(order))) + " < T1"
    head = f"a cycle of {len(order)} transactions, {chain}, so no order of them exists:"
    return Anomaly(
        name=classify(cycle),
        txns=members,
        explanation=(head, *(s.text for s in steps), *name_txns(members)),
        steps=tuple(steps),
    )
