"""Tiny transactional histories (at most 7 transactions): the checker's verdict for
serializability against a brute force over every serial order.

Histories are drawn at random from a seed: transactions with random micro-operations
and outcomes; the reads come from one serial execution of the committed ones (and
some `info` ones), and in 70% of the histories one read is then replaced by
another value the key could plausibly hold, which often makes them invalid.

list-append: the verdicts must be equal. rw-register: the checker infers only part
of each key's version order (docs/txn.md), so it may miss anomalies: only its
soundness is asserted (an anomaly it reports means no serial order exists).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from checker.history import Operation
from checker.txn import Txn, Verdict, check_transactions, transactions

KEYS = (0, 1, 2)
SEEDS = 2000


def random_history(kind: str, rng: random.Random) -> list[Operation]:
    n = rng.randint(1, 7)
    counters = dict.fromkeys(KEYS, 0)
    specs = []
    for _ in range(n):
        ops = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(KEYS)
            if rng.random() < 0.5:
                ops.append(["r", k, None])
            else:
                counters[k] += 1
                ops.append(["append" if kind == "append" else "w", k, counters[k]])
        outcome = rng.choices(["ok", "info", "fail"], [0.7, 0.15, 0.15])[0]
        specs.append((ops, outcome))
    applied = [i for i, (_, outcome) in enumerate(specs)
               if outcome == "ok" or (outcome == "info" and rng.random() < 0.5)]
    rng.shuffle(applied)
    state: dict[Any, Any] = {}
    results: dict[int, list[list[Any]]] = {}
    for i in applied:
        results[i] = execute(specs[i][0], state)
    written: dict[Any, list[Any]] = {k: [] for k in KEYS}
    for ops, _ in specs:
        for f, k, v in ops:
            if f != "r":
                written[k].append(v)
    ok_reads = [(i, j) for i in results if specs[i][1] == "ok"
                for j, m in enumerate(results[i]) if m[0] == "r"]
    if ok_reads and rng.random() < 0.7:
        i, j = rng.choice(ok_reads)
        k = results[i][j][1]
        values = written[k]
        if kind == "append":
            results[i][j][2] = rng.sample(values, rng.randint(0, len(values)))
        else:
            results[i][j][2] = rng.choice([None, *values])
    out = []
    for i, (ops, outcome) in enumerate(specs):
        value = results[i] if outcome == "ok" else ops
        out.append(Operation(process=i, f="txn", key=None, value=value, outcome=outcome,  # type: ignore[arg-type]
                             invoked=2 * i, completed=None if outcome == "info" else 2 * i + 1,
                             invoke_value=ops, line=2 * i + 1,
                             completed_line=None if outcome == "info" else 2 * i + 2))
    return out


def execute(ops: list[list[Any]], state: dict[Any, Any]) -> list[list[Any]]:
    out = []
    for f, k, v in ops:
        if f == "r":
            current = state.get(k)
            out.append([f, k, list(current) if isinstance(current, list) else current])
        elif f == "append":
            state[k] = [*state.get(k, []), v]
            out.append([f, k, v])
        else:
            state[k] = v
            out.append([f, k, v])
    return out


def serializable(txns: list[Txn], kind: str) -> bool:
    """Whether some serial order of the `ok` transactions, with any subset of the
    `info` ones, produces every read the `ok` ones saw (depth-first, pruned)."""
    must = [t for t in txns if t.outcome == "ok"]
    may = [t for t in txns if t.outcome == "info"]

    def runs(t: Txn, state: dict[Any, Any]) -> dict[Any, Any] | None:
        state = dict(state)
        for m in t.ops:
            if m.is_read:
                current = state.get(m.key)
                if t.outcome == "ok" and (
                        (m.value or ()) != (current or ()) if kind == "append"
                        else m.value != current):
                    return None
            elif m.f == "append":
                state[m.key] = (*state.get(m.key, ()), m.value)
            else:
                state[m.key] = m.value
        return state

    def search(done: frozenset[int], state: dict[Any, Any]) -> bool:
        if all(t.id in done for t in must):
            return True
        for t in (*must, *may):
            if t.id in done:
                continue
            after = runs(t, state)
            if after is not None and search(done | {t.id}, after):
                return True
        return False

    return search(frozenset(), {})


@pytest.mark.parametrize("kind", ["append", "wr"])
def test_tiny_histories_match_brute_force(kind: str) -> None:
    invalid = missed = 0
    for seed in range(SEEDS):
        rng = random.Random(f"{kind}/{seed}")
        txns = transactions(random_history(kind, rng), kind)  # type: ignore[arg-type]
        result = check_transactions(txns, kind, ["serializable"])  # type: ignore[arg-type]
        brute = serializable(txns, kind)
        where = f"{kind} seed {seed}: checker {result.verdict.value} {result.counts}, " \
                f"brute force {'serializable' if brute else 'not serializable'}\n" + \
                "\n".join(t.describe() for t in txns)
        assert result.verdict != Verdict.UNKNOWN, where
        if result.verdict == Verdict.INVALID:
            assert not brute, where
        elif kind == "append":
            assert brute, where
        invalid += not brute
        missed += result.verdict == Verdict.VALID and not brute
    print(f"{kind}: {invalid} of {SEEDS} not serializable, {missed} of them judged valid")
    assert SEEDS // 10 < invalid < SEEDS * 9 // 10, f"{kind}: {invalid} not serializable"
