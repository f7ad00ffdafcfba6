"""The dependency graph's order edges, and the consistency models' arithmetic."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from checker.txn.graph import order_edges
from checker.txn.history import MicroOp, Txn
from checker.txn.models import boundary, forbidden_by, implied_anomalies
from checker.txn.rels import Rel


def random_txns(rng: random.Random, n: int, processes: int) -> list[Txn]:
    """`n` transactions by `processes` clients, each running one at a time; some `info`."""
    events: list[tuple[int, str]] = []
    busy: dict[int, int] = {}
    started = 0
    while started < n or busy:
        p = rng.randrange(processes)
        if p in busy:
            events.append((p, "done"))
            del busy[p]
        elif started < n:
            events.append((p, "start"))
            busy[p] = started
            started += 1
    open_at: dict[int, tuple[int, int]] = {}
    txns: list[Txn] = []
    specs: dict[int, dict] = {}
    for index, (p, what) in enumerate(events):
        if what == "start":
            open_at[p] = (len(specs), index)
            specs[len(specs)] = {"process": p, "invoked": index, "completed": None}
        else:
            i, _ = open_at.pop(p)
            if rng.random() > 0.2:
                specs[i]["completed"] = index
    for i, s in specs.items():
        txns.append(Txn(id=i, process=s["process"],
                        outcome="ok" if s["completed"] is not None else "info",
                        ops=(MicroOp("r", 0, None),), invoked=s["invoked"],
                        completed=s["completed"], line=s["invoked"] + 1,
                        completed_line=None if s["completed"] is None else s["completed"] + 1))
    return txns


@pytest.mark.parametrize("seed", range(30))
def test_realtime_edges_are_the_transitive_reduction(seed: int) -> None:
    rng = random.Random(seed)
    txns = random_txns(rng, n=rng.randint(1, 60), processes=rng.randint(1, 8))
    ours = {(a, b) for a, b, rel in order_edges(txns, {t.id for t in txns})
            if rel == Rel.REALTIME}
    order = nx.DiGraph()
    order.add_nodes_from(t.id for t in txns)
    order.add_edges_from((a.id, b.id) for a in txns for b in txns
                         if a.completed is not None and a.completed < b.invoked)
    assert ours == set(nx.transitive_reduction(order).edges), f"seed {seed}"


@pytest.mark.parametrize("seed", range(10))
def test_process_edges_follow_each_process_last_ok_transaction(seed: int) -> None:
    rng = random.Random(seed)
    txns = random_txns(rng, n=40, processes=3)
    ours = {(a, b) for a, b, rel in order_edges(txns, {t.id for t in txns})
            if rel == Rel.PROCESS}
    expected = set()
    for b in txns:
        before = [a for a in txns if a.process == b.process and a.outcome == "ok"
                  and a.completed is not None and a.completed < b.invoked]
        if before:
            expected.add((max(before, key=lambda t: t.invoked).id, b.id))
    assert ours == expected, f"seed {seed}"


def test_models_forbid_what_their_definitions_say() -> None:
    serializable = forbidden_by(["serializable"])
    assert {"G0", "G1a", "G1b", "G1c", "G-single", "G2-item", "lost-update", "internal",
            "incompatible-order", "duplicate-elements"} <= serializable
    assert not {"G-single-realtime", "G0-process", "G2-item-realtime"} & serializable
    strict = forbidden_by(["strict-serializable"])
    assert {"G-single-realtime", "G0-realtime", "G-nonadjacent-process"} <= strict
    si = forbidden_by(["snapshot-isolation"])
    assert "G-single" in si and "G-nonadjacent" in si and "G2-item" not in si
    assert "G1c" not in forbidden_by(["read-uncommitted"])
    assert "G0" in forbidden_by(["read-uncommitted"])
    assert {"G0", "G1c", "G0-process", "G0-realtime", "G1"} <= implied_anomalies(["G0"])


@pytest.mark.parametrize(("found", "not_", "satisfied"), [
    ([], (), ("strict-serializable",)),
    (["G-single-realtime"], ("strong-snapshot-isolation",),
     ("strong-session-serializable", "strong-read-committed")),
    (["G2-item"], ("repeatable-read",), ("strong-snapshot-isolation",)),
    (["G-single"], ("snapshot-isolation", "repeatable-read"), ("strong-read-committed",)),
    (["G1c"], ("read-committed",), ("strong-read-uncommitted",)),
    (["G1c-realtime"], ("strong-read-committed",),
     ("strong-session-serializable", "strong-read-uncommitted")),
    (["G0"], ("read-uncommitted",), ()),
    (["lost-update"], ("snapshot-isolation", "repeatable-read"), ("strong-read-committed",)),
])
def test_boundary(found: list[str], not_: tuple[str, ...], satisfied: tuple[str, ...]) -> None:
    b = boundary(found)
    assert b.not_ == not_
    assert b.strongest_satisfied == satisfied
