"""Property tests: the checker against a brute-force search and a simulated store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import Op, check_operations, make_model, pair
from checker.models.base import INVALID
from checker.models.register import Read, Write
from checker.search import Entry
from checker.simulate import Workload, initial, inject_impossible, simulate
from tests.brute import brute_force_linearizable
from tests.histories import assert_window_fails, interleaved

MODELS: dict[str, Any] = {"cas-register": 0, "etcd": None, "mutex": False, "kv-append": ""}
VALUES = {"cas-register": [0, 1, 2], "etcd": [None, 1, 2], "kv-append": ["a", "b"]}


class _Any:
    """Any call of the model, any outcome; reads return any observable value."""

    def __init__(self, model: str):
        self.model = model

    def invoke(self, draw: st.DrawFn) -> tuple[str, Any]:
        return draw(_call(self.model))

    def outcome(self, draw: st.DrawFn, f: str, value: Any) -> str:
        return draw(st.sampled_from(["ok", "ok", "ok", "fail", "info", "pending"]))

    def completion(self, draw: st.DrawFn, f: str, value: Any, outcome: str) -> tuple[Any, Any]:
        if outcome == "ok" and f in ("read", "get"):
            value = draw(st.sampled_from(_observable(self.model)))
        return value, "compare-failed" if outcome == "fail" else None


@st.composite
def small_history(draw: st.DrawFn, model: str) -> list[Op]:
    """Up to 12 operations by up to 4 processes, any interleaving, any outcome."""
    return interleaved(draw, _Any(model))


def _observable(model: str) -> list[Any]:
    return ["", "a", "b", "ab", "ba"] if model == "kv-append" else VALUES[model]


def _call(model: str) -> st.SearchStrategy[tuple[str, Any]]:
    if model == "mutex":
        return st.sampled_from([("acquire", None), ("release", None)])
    if model == "kv-append":
        return st.tuples(st.sampled_from(["get", "put", "append"]), st.sampled_from(["a", "b"]))
    vals = [v for v in VALUES[model] if v is not None]
    return st.one_of(
        st.tuples(st.just("read"), st.none()),
        st.tuples(st.just("write"), st.sampled_from(vals)),
        st.tuples(st.just("cas"), st.lists(st.sampled_from(vals), min_size=2, max_size=2)),
    )


@pytest.mark.parametrize("model", sorted(MODELS))
@settings(max_examples=300)
@given(data=st.data())
def test_agrees_with_brute_force_on_small_histories(model: str, data: st.DataObject) -> None:
    ops = data.draw(small_history(model))
    m = make_model(model, MODELS[model])
    expected = brute_force_linearizable(m, list(pair(ops)), m.init())
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is expected, f"history: {[o.to_json() for o in ops]}"
    if result.valid is False:
        assert_window_fails(m, result.keys[0].counterexample.window)


SEEDS = range(12)


@pytest.mark.parametrize("kind", ["cas-register", "etcd", "kv-append"])
@pytest.mark.parametrize("seed", SEEDS)
def test_simulated_store_histories_are_valid(kind: str, seed: int) -> None:
    w = Workload(kind=kind, ops=400, processes=8, keys=3, p_info=0.05)
    ops = simulate(seed, w)
    model = make_model("kv" if kind == "etcd" else kind, initial(kind))
    result = check_operations(model, pair(ops), workers=1)
    assert result.valid is True, f"seed {seed}: {[k.to_json() for k in result.keys]}"


@pytest.mark.parametrize("kind", ["cas-register", "etcd", "kv-append"])
@pytest.mark.parametrize("seed", SEEDS)
def test_one_impossible_read_or_cas_makes_it_invalid(kind: str, seed: int) -> None:
    w = Workload(kind=kind, ops=300, processes=6, keys=1, p_info=0.05)
    ops = inject_impossible(simulate(seed, w), seed)
    model = make_model("etcd" if kind == "etcd" else kind, initial(kind))
    result = check_operations(model, pair(ops), workers=1)
    assert result.valid is False, f"seed {seed}"
    ce = result.keys[0].counterexample
    assert "never-written" in ce.op.description, f"seed {seed}: {ce.op}"
    assert_window_fails(model, ce.window)


def test_search_windows_of_stale_reads_fail() -> None:
    """Windows found by search (not refutation) on a history needing real search."""
    m = make_model("cas-register", 0)
    # Two overlapping writes, then two reads that disagree on their order.
    ops = [Op(0, 0, "invoke", "write", 1), Op(1, 1, "invoke", "write", 2),
           Op(2, 0, "ok", "write", 1), Op(3, 1, "ok", "write", 2),
           Op(4, 2, "invoke", "read", None), Op(5, 2, "ok", "read", 1),
           Op(6, 3, "invoke", "read", None), Op(7, 3, "ok", "read", 2),
           Op(8, 2, "invoke", "read", None), Op(9, 2, "ok", "read", 1)]
    result = check_operations(m, pair(ops), workers=1)
    assert result.valid is False
    assert result.keys[0].reason is None  # decided by search
    ce = result.keys[0].counterexample
    # After both writes and the read of 1, the value is 1 until the end.
    assert ce.op.invoked == 6 and "could only be 1 then" in ce.explanation
    assert ce.partial_linearizations and ce.concurrent == []
    assert_window_fails(m, ce.window)


def test_budget_gives_unknown_not_a_hang() -> None:
    ops = simulate(7, Workload(kind="etcd", ops=3000, processes=10, keys=1, p_info=0.05))
    m = make_model("etcd")
    result = check_operations(m, pair(ops), time_limit=1e-9, workers=1)
    assert result.valid == "unknown"
    assert "time limit" in result.keys[0].reason
    tight = check_operations(m, pair(ops), memory_limit=1, workers=1)
    assert tight.valid == "unknown" and "memory limit" in tight.keys[0].reason


def test_interchangeable_indeterminate_ops_do_not_blow_up() -> None:
    """Forty crashed writes of the same value: symmetry keeps the search small."""
    ops: list[Op] = []
    for p in range(40):
        ops.append(Op(len(ops), p, "invoke", "write", 1))
        ops.append(Op(len(ops), p, "info", "write", None))
    for v in (1, 0, 1):
        ops.append(Op(len(ops), 99, "invoke", "write" if v == 0 else "read", v))
        ops.append(Op(len(ops), 99, "ok", "write" if v == 0 else "read", v))
    result = check_operations(make_model("cas-register", 0), pair(ops), workers=1)
    assert result.valid is True
    assert result.keys[0].configs < 100


def test_parallel_and_serial_agree() -> None:
    ops = simulate(3, Workload(kind="etcd", ops=25_000, processes=20, keys=40, p_info=0.02))
    bad = inject_impossible(ops, 3)
    m = make_model("kv")
    serial = check_operations(m, pair(bad), workers=1)
    parallel = check_operations(m, pair(bad), workers=2)
    assert serial.valid is False and parallel.valid is False
    assert [(k.key, k.valid) for k in serial.keys] == [(k.key, k.valid) for k in parallel.keys]


def test_step_refusal_is_a_distinct_value() -> None:
    m = make_model("etcd")
    assert m.step(None, Read(None)) is None  # absent is a state, not a refusal
    assert m.step(None, Read(1)) is INVALID


@pytest.mark.parametrize("seed", range(30))
def test_real_time_order_is_networkx_transitive_reduction(seed: int) -> None:
    import random

    from checker.explain import real_time_order

    nx = pytest.importorskip("networkx")  # only to compare with; the checker does without

    rng = random.Random(seed)
    window = []
    for i in range(rng.randrange(1, 25)):
        start = 2 * i
        end = None if rng.random() < 0.2 else start + 1 + 2 * rng.randrange(0, 8)
        window.append(Entry(Write(i), start, end))
    graph = nx.DiGraph()
    graph.add_nodes_from(e.invoked for e in window)
    for a in window:
        for b in window:
            if a.completed is not None and b.invoked > a.completed:
                graph.add_edge(a.invoked, b.invoked)
    expected = sorted([a, b] for a, b in nx.transitive_reduction(graph).edges)
    assert real_time_order(window) == expected, f"seed {seed}"
