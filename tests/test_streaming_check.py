"""The linearizability check read key by key from disk (checker/spool.py) gives the
verdicts and counterexamples the in-memory check gives, on generated histories and on
the shared corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import checker.spool
from checker import check_file, check_operations, make_model, pair
from checker.formats import write_jsonl
from checker.linearizable import CheckResult, check_spool
from checker.simulate import (
    Workload,
    initial,
    inject_impossible,
    keyed_register_history,
    simulate,
)
from checker.spool import Spool
from tests.conftest import CORPUS
from tests.test_corpus import corpus_files, expected

SEEDS = range(10)


def comparable(result: CheckResult) -> Any:
    """The result's JSON without the times it took."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("seconds", "time_s")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(result.to_json())


def generated(seed: int) -> tuple[str, list[Any]]:
    kind = ("etcd", "cas-register", "kv-append")[seed % 3]
    ops = simulate(seed, Workload(kind=kind, ops=1200, processes=5, keys=1 + seed % 7,
                                  p_info=0.05))
    if seed % 2:
        ops = inject_impossible(ops, seed)
    return kind, ops


@pytest.mark.parametrize("seed", SEEDS)
def test_spooled_check_equals_the_in_memory_check(seed: int, tmp_path: Path) -> None:
    kind, ops = generated(seed)
    model = make_model(kind, initial(kind))
    whole = check_operations(model, list(pair(ops)), workers=1)
    for workers in (1, 2):
        with Spool(spill_above=50, buckets=5, directory=str(tmp_path)) as spool:
            for op in pair(ops):
                spool.add(op)
            spool.finish()
            assert spool.spilled
            spooled = check_spool(model, spool, workers=workers)
        assert comparable(spooled) == comparable(whole), f"seed {seed}, workers {workers}"
    assert whole.valid is (seed % 2 == 0), f"seed {seed}"
    assert list(tmp_path.iterdir()) == [], "the spool's files are removed"


@pytest.mark.parametrize("seed", SEEDS)
def test_check_file_spilled_to_disk_equals_in_memory(seed: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    kind, ops = generated(seed)
    path = tmp_path / "history.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    in_memory = check_file(str(path), kind, initial(kind), "jsonl", workers=1)
    monkeypatch.setattr(checker.spool, "SPILL_ABOVE", 100)
    spooled = check_file(str(path), kind, initial(kind), "jsonl", workers=1)
    assert comparable(spooled.result) == comparable(in_memory.result), f"seed {seed}"
    assert spooled.result.events == len(ops)


def small_corpus() -> list[Path]:
    return [p for p in corpus_files() if p.stat().st_size < 200_000]


@pytest.mark.parametrize("path", small_corpus(),
                         ids=lambda p: p.relative_to(CORPUS).as_posix())
def test_corpus_spilled_to_disk_gets_the_same_result(path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model, init, good = expected(path)
    in_memory = check_file(str(path), model=model, initial=init, time_limit=120, workers=1)
    monkeypatch.setattr(checker.spool, "SPILL_ABOVE", 20)
    monkeypatch.setattr(checker.spool, "BUCKETS", 3)
    spooled = check_file(str(path), model=model, initial=init, time_limit=120, workers=1)
    assert spooled.result.valid is good
    assert comparable(spooled.result) == comparable(in_memory.result), str(path)


@pytest.mark.parametrize("workers", (1, 2))
def test_spilled_check_explains_the_same_earliest_keys(workers: int, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """With a bound on the keys explained (as the harness asks), the spilled check reads the
    buckets of the earliest violations again and explains exactly the keys the in-memory
    check explains; the others carry the same summaries."""
    seed = 3
    ops = keyed_register_history(seed, keys=12, ops_per_key=60, processes=4)
    path = tmp_path / "history.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    in_memory = check_file(str(path), "kv", None, "jsonl", workers=1, max_explained=3)
    monkeypatch.setattr(checker.spool, "SPILL_ABOVE", 100)
    monkeypatch.setattr(checker.spool, "BUCKETS", 4)
    spooled = check_file(str(path), "kv", None, "jsonl", workers=workers, max_explained=3)
    explained = [k.key for k in spooled.result.keys if k.counterexample is not None]
    assert len(explained) == 3, f"seed {seed}: {explained}"
    assert sum(k.valid is False for k in spooled.result.keys) > 3, f"seed {seed}"
    assert comparable(spooled.result) == comparable(in_memory.result), f"seed {seed}"
