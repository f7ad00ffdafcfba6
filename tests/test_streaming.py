"""Long runs in bounded memory: the recorder holds no operation, the statistics and
set-full read a history streaming and agree with the computation that held every op."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from checker.formats import write_jsonl
from checker.history import NEMESIS, Op
from checker.quantiles import Quantiles
from checker.set_full import check_set_full, quantiles
from checker.simulate import Workload, simulate, with_faults
from checker.stats import compute
from harness.ops import Completion, Invocation
from harness.recorder import Recorder, read_history, stream_history
from tests.stats_reference import exact_stats

SEEDS = range(12)


def faulty_history(seed: int, ops: int = 1500) -> list[Op]:
    kind = ("etcd", "cas-register", "kv-append")[seed % 3]
    client = simulate(seed, Workload(kind=kind, ops=ops, processes=6, keys=1 + seed % 4,
                                     p_info=0.05))
    return with_faults(client, seed, faults=seed % 5, recover=0.7)


def write(path: Path, ops: list[Op]) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    return path


@pytest.mark.parametrize("seed", SEEDS)
def test_streaming_statistics_equal_the_exact_ones(seed: int, tmp_path: Path) -> None:
    ops = faulty_history(seed)
    expected = exact_stats(ops).to_json()
    assert compute(ops).to_json() == expected, f"seed {seed}"
    path = write(tmp_path / "history.jsonl", ops)
    assert compute(stream_history(path)).to_json() == expected, f"seed {seed}"


@pytest.mark.parametrize("seed", SEEDS)
def test_bucketed_quantiles_are_within_the_documented_error(seed: int) -> None:
    ops = faulty_history(seed)
    expected = exact_stats(ops).to_json()
    got = compute(ops, exact_limit=10).to_json()
    for f, exact in expected["latency_ms"].items():
        approx = got["latency_ms"][f]
        assert approx["max"] == exact["max"], f"seed {seed}"
        for name in ("p50", "p90", "p99"):
            # 0.5 % relative (the bucket), and the rounding to 3 decimals
            assert abs(approx[name] - exact[name]) <= 0.005 * exact[name] + 0.0011, (
                f"seed {seed}: {f} {name} {approx[name]} vs {exact[name]}")
    del got["latency_ms"], expected["latency_ms"]
    assert got == expected, f"seed {seed}"


def test_quantiles_of_many_values_stay_bounded_and_close() -> None:
    seed = 5
    rng = random.Random(seed)
    values = [rng.lognormvariate(2.0, 1.5) for _ in range(200_000)]
    q = Quantiles()
    for v in values:
        q.add(v)
    assert not q.exact and 0 < q.buckets < 5_000, f"seed {seed}"
    exact = quantiles(values)
    approx = q.to_json()
    assert exact is not None and approx is not None
    assert approx["max"] == exact["max"]
    for name in ("p50", "p90", "p99"):
        assert abs(approx[name] - exact[name]) <= 0.005 * exact[name] + 0.0011, name


@pytest.mark.parametrize("seed", range(4))
def test_set_full_from_a_stream_equals_set_full_from_a_list(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    ops: list[Op] = []
    t = 0
    elements: list[int] = []
    for n in range(400):
        process = n % 4
        t += rng.randrange(1, 5) * 1_000_000
        if rng.random() < 0.6:
            element = len(elements)
            ops.append(Op(len(ops), process, "invoke", "add", element, "s", t))
            kind = rng.choice(["ok", "ok", "ok", "fail", "info"])
            if kind != "fail":
                elements.append(element)
            ops.append(Op(len(ops), process, kind, "add", element, "s", t + 500_000))  # type: ignore[arg-type]
        else:
            seen = [e for e in elements if rng.random() < 0.97]
            ops.append(Op(len(ops), process, "invoke", "read", None, "s", t))
            ops.append(Op(len(ops), process, "ok", "read", seen, "s", t + 500_000))
    path = write(tmp_path / "history.jsonl", ops)
    assert (check_set_full(stream_history(path)).to_json() == check_set_full(ops).to_json()
            ), f"seed {seed}"


def test_the_recorder_holds_no_operation(tmp_path: Path) -> None:
    """Memory grows with what is in flight, not with what was recorded: 20,000 more
    operations cost the recorder (nearly) nothing, and every one is in the file."""
    recorder = Recorder(tmp_path / "history.jsonl")
    recorder.begin()
    op = Invocation("write", 1, "k")

    def record(n: int) -> None:
        for i in range(n):
            recorder.invoke(i % 10, op)
            recorder.complete(i % 10, op, Completion("ok", 1))
        recorder.invoke(NEMESIS, Invocation("kill"))
        recorder.complete(NEMESIS, Invocation("kill"), Completion("info", "n1"))

    tracemalloc.start()
    try:
        record(1_000)
        before, _ = tracemalloc.get_traced_memory()
        record(20_000)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        recorder.close()
    # a list of 40,000 Ops would take megabytes; a few counters do not grow
    assert after - before < 32_000, f"{after - before} bytes more after 20,000 operations"
    assert recorder.events == 2 * 21_002 and recorder.tally.invoked == 21_000
    ops = read_history(tmp_path / "history.jsonl")
    assert [o.index for o in ops] == list(range(2 * 21_002))
    assert not any(isinstance(v, list | dict) and len(v) > 100 for v in vars(recorder).values())


