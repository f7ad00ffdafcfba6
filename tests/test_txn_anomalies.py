"""The transactional checker on histories of a simulated strict-serializable database:
never an anomaly there, and each anomaly class planted alone in such a history is
found, named right, and explained with the planted transactions."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import pytest

from checker.history import Op, pair
from checker.txn import Txn, Verdict, check_transactions, transactions
from checker.txn.history import ext_reads, final_writes
from checker.txn.rels import Rel, Why
from checker.txn.simulate import TxnWorkload, simulate

PLANT_PROCESS = 10_000  # planted transactions run on processes the simulation never uses


@pytest.mark.parametrize("kind", ["append", "wr"])
@pytest.mark.parametrize("seed", range(40))
def test_strict_serializable_database_has_no_anomaly(kind: str, seed: int) -> None:
    w = TxnWorkload(kind=kind, txns=150, processes=1 + seed % 8, keys=1 + seed % 5,  # type: ignore[arg-type]
                    p_info=0.15)
    txns = transactions(pair(simulate(w, seed)), kind)  # type: ignore[arg-type]
    result = check_transactions(txns, kind)  # type: ignore[arg-type]
    assert result.verdict == Verdict.VALID, (
        f"seed {seed}: {result.counts}\n" + "\n".join(
            line for a in result.anomalies[:3] for line in a.explanation))
    assert result.counts == {}, f"seed {seed}"
    assert result.strongest_satisfied == ("strict-serializable",), f"seed {seed}"


@dataclass(frozen=True)
class Planted:
    """Transactions by name (A, B, …): the micro-operations invoked and completed, and
    the outcome; `schedule` orders their events: `A` invokes A, `a` completes it."""

    txns: dict[str, tuple[list[list[Any]], str]]  # name -> (completed value, outcome)
    schedule: str
    same_process: bool = False

    def ops(self) -> list[tuple[int | str, str, Any]]:
        out: list[tuple[int | str, str, Any]] = []
        names = sorted(self.txns)
        for step in self.schedule.split():
            name = step.upper()
            value, outcome = self.txns[name]
            process = PLANT_PROCESS if self.same_process else PLANT_PROCESS + names.index(name)
            if step.isupper():
                invoked = [[f, k, None if f == "r" else v] for f, k, v in value]
                out.append((process, "invoke", invoked))
            else:
                out.append((process, outcome, value if outcome == "ok" else
                            [[f, k, None if f == "r" else v] for f, k, v in value]))
        return out


def plant(base: list[Op], planted: Planted, rng: random.Random) -> tuple[list[Op], set[int]]:
    """The base history with the planted events inserted at a random point, every op
    renumbered as in a file; and the lines where the planted transactions begin."""
    at = rng.randint(0, len(base))
    extra = [Op(index=0, process=p, type=t, f="txn", value=v)  # type: ignore[arg-type]
             for p, t, v in planted.ops()]
    merged = base[:at] + extra + base[at:]
    out = [replace(op, index=i, time=i * 1000, line=i + 1) for i, op in enumerate(merged)]
    starts = {at + i + 1 for i, (_, t, _) in enumerate(planted.ops()) if t == "invoke"}
    return out, starts


def ok(*ops: list[Any]) -> tuple[list[list[Any]], str]:
    return list(ops), "ok"


def failed(*ops: list[Any]) -> tuple[list[list[Any]], str]:
    return list(ops), "fail"


A, R, W = "append", "r", "w"
# anomaly -> (workload, planted transactions, every anomaly name the checker must report)
CASES: dict[str, tuple[str, Planted, set[str]]] = {
    "append-G0": ("append", Planted({
        "A": ok([A, "a", 1], [A, "b", 1]), "B": ok([A, "a", 2], [A, "b", 2]),
        "C": ok([R, "a", [1, 2]], [R, "b", [2, 1]])}, "A B a b C c"), {"G0"}),
    "append-G1a": ("append", Planted({
        "A": failed([A, "a", 1]), "B": ok([R, "a", [1]])}, "A a B b"), {"G1a"}),
    # B saw A's first append but not its second: also a cycle A -wr-> B -rw-> A.
    "append-G1b": ("append", Planted({
        "A": ok([A, "a", 1], [A, "a", 2]), "B": ok([R, "a", [1]])}, "A B b a"),
        {"G1b", "G-single"}),
    "append-G1c": ("append", Planted({
        "A": ok([A, "a", 1], [R, "b", [2]]), "B": ok([A, "b", 2], [R, "a", [1]])},
        "A B a b"), {"G1c"}),
    "append-G-single": ("append", Planted({
        "A": ok([A, "a", 1], [A, "b", 1]), "B": ok([R, "a", []], [R, "b", [1]])},
        "A B a b"), {"G-single"}),
    "append-G-nonadjacent": ("append", Planted({
        "A": ok([R, "a", []], [R, "d", [4]]), "B": ok([A, "a", 2]),
        "C": ok([R, "a", [2]], [R, "c", []]), "D": ok([A, "c", 4], [A, "d", 4])},
        "A B C D a b c d"), {"G-nonadjacent"}),
    "append-G2-item": ("append", Planted({
        "A": ok([A, "a", 1], [R, "b", []]), "B": ok([A, "b", 2], [R, "a", []])},
        "A B a b"), {"G2-item"}),
    # A lost update is a cycle too: A -ww-> B -rw-> A.
    "append-lost-update": ("append", Planted({
        "A": ok([R, "a", []], [A, "a", 1]), "B": ok([R, "a", []], [A, "a", 2]),
        "C": ok([R, "a", [1, 2]])}, "A B a b C c"), {"lost-update", "G-single"}),
    "append-internal": ("append", Planted({
        "A": ok([A, "a", 1], [R, "a", []])}, "A a"), {"internal"}),
    "append-duplicate-elements": ("append", Planted({
        "A": ok([A, "a", 1]), "B": ok([R, "a", [1, 1]])}, "A a B b"),
        {"duplicate-elements"}),
    "append-incompatible-order": ("append", Planted({
        "A": ok([A, "a", 1]), "B": ok([A, "a", 2]), "C": ok([R, "a", [1, 2]]),
        "D": ok([R, "a", [2, 1]])}, "A B a b C D c d"), {"incompatible-order"}),
    "append-dirty-update": ("append", Planted({
        "A": failed([A, "a", 1]), "B": ok([A, "a", 2]), "C": ok([R, "a", [1, 2]])},
        "A a B b C c"), {"dirty-update", "G1a"}),
    "append-future-read": ("append", Planted({
        "A": ok([R, "a", [1]], [A, "a", 1])}, "A a"), {"future-read"}),
    "append-garbage-read": ("append", Planted({
        "A": ok([R, "a", [7]])}, "A a"), {"garbage-read"}),
    "append-G-single-realtime": ("append", Planted({
        "A": ok([A, "a", 1]), "B": ok([R, "a", []])}, "A a B b"), {"G-single-realtime"}),
    "append-G-single-process": ("append", Planted({
        "A": ok([A, "a", 1]), "B": ok([R, "a", []])}, "A a B b", same_process=True),
        {"G-single-process"}),
    # A read B's append although B began only after A had completed.
    "append-G1c-realtime": ("append", Planted({
        "A": ok([R, "b", [1]]), "B": ok([A, "b", 1])}, "A a B b"), {"G1c-realtime"}),
    # B began after A completed, yet the list shows B's element first.
    "append-G0-realtime": ("append", Planted({
        "A": ok([A, "a", 1]), "B": ok([A, "a", 2]), "C": ok([R, "a", [2, 1]])},
        "A a B b C c"), {"G0-realtime"}),
    # The same process read B's append before running B.
    "append-G1c-process": ("append", Planted({
        "A": ok([R, "b", [1]]), "B": ok([A, "b", 1])}, "A a B b", same_process=True),
        {"G1c-process"}),
    "wr-G2-item-realtime": ("wr", Planted({
        "A": ok([W, "a", 1]), "B": ok([R, "x", None]), "C": ok([R, "a", None], [W, "x", 1])},
        "C A a B b c"), {"G2-item-realtime"}),
    "wr-G0": ("wr", Planted({
        "A": ok([R, "b", 2], [W, "a", 1], [W, "b", 1]),
        "B": ok([R, "a", 1], [W, "a", 2], [W, "b", 2])}, "A B a b"), {"G0"}),
    "wr-G1a": ("wr", Planted({
        "A": failed([W, "a", 1]), "B": ok([R, "a", 1])}, "A a B b"), {"G1a"}),
    "wr-G1b": ("wr", Planted({
        "A": ok([W, "a", 1], [W, "a", 2]), "B": ok([R, "a", 1])}, "A B b a"), {"G1b"}),
    "wr-G1c": ("wr", Planted({
        "A": ok([W, "a", 1], [R, "b", 2]), "B": ok([W, "b", 2], [R, "a", 1])},
        "A B a b"), {"G1c"}),
    "wr-G-single": ("wr", Planted({
        "A": ok([W, "a", 1], [W, "b", 1]), "B": ok([R, "a", None], [R, "b", 1])},
        "A B a b"), {"G-single"}),
    "wr-G-nonadjacent": ("wr", Planted({
        "A": ok([R, "a", None], [R, "d", 4]), "B": ok([W, "a", 2]),
        "C": ok([R, "a", 2], [R, "c", None]), "D": ok([W, "c", 4], [W, "d", 4])},
        "A B C D a b c d"), {"G-nonadjacent"}),
    "wr-G2-item": ("wr", Planted({
        "A": ok([R, "a", None], [W, "b", 1]), "B": ok([R, "b", None], [W, "a", 1])},
        "A B a b"), {"G2-item"}),
    "wr-lost-update": ("wr", Planted({
        "A": ok([R, "a", None], [W, "a", 1]), "B": ok([R, "a", None], [W, "a", 2])},
        "A B a b"), {"lost-update", "G2-item"}),
    "wr-internal": ("wr", Planted({
        "A": ok([W, "a", 1], [R, "a", 5])}, "A a"), {"internal"}),
    "wr-future-read": ("wr", Planted({
        "A": ok([R, "a", 1], [W, "a", 1])}, "A a"), {"future-read"}),
    "wr-garbage-read": ("wr", Planted({
        "A": ok([R, "a", 9])}, "A a"), {"garbage-read"}),
    "wr-G-single-realtime": ("wr", Planted({
        "A": ok([W, "a", 1]), "B": ok([R, "a", None])}, "A a B b"), {"G-single-realtime"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", range(3))
def test_planted_anomaly_is_found_alone_and_explained(case: str, seed: int) -> None:
    kind, planted, expected = CASES[case]
    rng = random.Random(f"{case}/{seed}")
    base = simulate(TxnWorkload(kind=kind, txns=120, processes=4), seed)  # type: ignore[arg-type]
    ops, starts = plant(base, planted, rng)
    txns = transactions(pair(ops), kind)  # type: ignore[arg-type]
    result = check_transactions(txns, kind)  # type: ignore[arg-type]
    where = f"case {case}, seed {seed}"
    assert set(result.counts) == expected, f"{where}: {result.counts}"
    assert result.verdict == Verdict.INVALID, where
    for name in expected:
        witness = next(a for a in result.anomalies if a.name == name)
        lines = {t.line for t in witness.txns}
        assert lines <= starts, f"{where}: {name} names lines {lines}, planted {starts}"
        text = "\n".join(witness.explanation)
        for t in witness.txns:
            assert f"line {t.line}" in text or f"lines {t.line}-" in text, (where, text)
        if witness.is_cycle:
            assert len(witness.steps) == len(witness.txns), where
            assert all(f"T{s.source + 1} < T{s.target + 1} because" in s.text
                       for s in witness.steps), (where, text)


def test_stale_read_explained_as_elle_does() -> None:
    planted = Planted({"A": ok([A, 3, 5]), "B": ok([R, 3, []])}, "A a B b")
    ops, _ = plant([], planted, random.Random(0))
    result = check_transactions(transactions(pair(ops), "append"), "append")
    [cycle] = result.anomalies
    assert cycle.name == "G-single-realtime"
    assert cycle.explanation[1:3] == (
        "T1 < T2 because T1 completed (line 2) before T2 began (line 3)",
        "T2 < T1 because T2 read key 3 as an empty list and did not see T1's append of 5, "
        "which no read saw",
    )
    assert result.not_models == ("strong-snapshot-isolation",)
    assert result.strongest_satisfied == ("strong-session-serializable", "strong-read-committed")
    assert result.to_json()["valid"] is False
    loose = check_transactions(transactions(pair(ops), "append"), "append", ["serializable"])
    assert loose.verdict == Verdict.VALID


def step_holds(kind: str, src: Txn, dst: Txn, why: Why, reads: dict[Any, list[Any]],
               wfr: set[tuple[Any, Any, Any]]) -> bool:
    """Whether the history itself shows what one edge of a cycle claims. `reads`: every
    list read of each key; `wfr`: (key, read, then written) by one transaction."""
    rel, key, value, before = why.rel, why.key, why.value, why.before
    if rel in (Rel.REALTIME, Rel.PROCESS):
        return (src.completed is not None and src.completed < dst.invoked
                and (rel == Rel.REALTIME or src.process == dst.process))
    wrote_src = {(m.key, m.value) for m in src.ops if not m.is_read}
    wrote_dst = {(m.key, m.value) for m in dst.ops if not m.is_read}
    if kind == "append":
        def ext(t: Txn) -> tuple[Any, ...]:
            return next(m.value or () for m in ext_reads(t) if m.key == key)
        if rel == Rel.WR:
            return (key, value) in wrote_src and ext(dst)[-1:] == (value,)
        if rel == Rel.WW:
            seen_after = any(r[i:i + 2] == (before, value) for r in reads[key]
                             for i in range(len(r)))
            unread = why.unread and not any(value in r for r in reads[key]) and any(
                r[-1:] == (before,) for r in reads[key])
            return (key, before) in wrote_src and (key, value) in wrote_dst and (
                unread if why.unread else seen_after)
        seen = ext(src)
        later = (not any(value in r for r in reads[key]) if why.unread else
                 any(r[len(seen):len(seen) + 1] == (value,) and r[:len(seen)] == seen
                     for r in reads[key]))
        return ((seen[-1:] == (before,) if before is not None else seen == ())
                and (key, value) in wrote_dst and later)
    finals_src, finals_dst = final_writes(src), final_writes(dst)
    ext_dst = {m.key: m.value for m in ext_reads(dst)}
    ext_src = {m.key: m.value for m in ext_reads(src)}
    if rel == Rel.WR:
        return (key, value) in wrote_src and key in ext_dst and ext_dst[key] == value
    if rel == Rel.WW:
        return (finals_src.get(key) == before and ext_dst.get(key, "absent") == before
                and finals_dst.get(key) == value)
    return (key in ext_src and ext_src[key] == before and finals_dst.get(key) == value
            and (before is None or (key, before, value) in wfr))


@pytest.mark.parametrize("kind", ["append", "wr"])
def test_every_cycle_edge_is_shown_by_the_history(kind: str) -> None:
    cycles = 0
    for seed in range(12):
        w = TxnWorkload(kind=kind, txns=400, processes=6, keys=2, p_stale=0.05)  # type: ignore[arg-type]
        txns = transactions(pair(simulate(w, seed)), kind)  # type: ignore[arg-type]
        result = check_transactions(txns, kind)  # type: ignore[arg-type]
        reads: dict[Any, list[Any]] = defaultdict(list)
        wfr: set[tuple[Any, Any, Any]] = set()
        for t in txns:
            if t.outcome != "ok":
                continue
            done = final_writes(t)
            for m in t.ops:
                if m.is_read and kind == "append":
                    reads[m.key].append(m.value or ())
            for m in ext_reads(t):
                if m.key in done:
                    wfr.add((m.key, m.value, done[m.key]))
        for a in result.anomalies:
            if not a.is_cycle:
                continue
            cycles += 1
            assert [s.source for s in a.steps] == list(range(len(a.txns))), (kind, seed)
            assert [s.target for s in a.steps] == [*range(1, len(a.txns)), 0], (kind, seed)
            for s in a.steps:
                assert step_holds(kind, a.txns[s.source], a.txns[s.target], s.why, reads,
                                  wfr), (
                    f"{kind} seed {seed}: {s.text}\n" + "\n".join(a.explanation))
    print(f"{kind}: {cycles} cycles verified")
    assert cycles > 20, f"{kind}: only {cycles} cycles to verify"


def test_realtime_cycle_crosses_the_history_in_one_step() -> None:
    # The graph holds realtime order only as its transitive reduction, A < B < C < D < E;
    # the explanation says A < E directly.
    planted = Planted({"A": ok([A, "a", 1]), "B": ok([R, "z", []]), "C": ok([R, "z", []]),
                       "D": ok([R, "z", []]), "E": ok([R, "a", []])},
                      "A a B b C c D d E e")
    ops, _ = plant([], planted, random.Random(0))
    result = check_transactions(transactions(pair(ops), "append"), "append")
    [cycle] = result.anomalies
    assert cycle.name == "G-single-realtime"
    assert [t.line for t in cycle.txns] == [1, 9]
    assert cycle.explanation[1] == "T1 < T2 because T1 completed (line 2) before T2 began (line 9)"
