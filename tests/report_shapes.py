"""Every shape of counterexample the checker produces, made by the checker itself from
histories of checker/simulate.py, each as a run folder (history.jsonl, spec.yaml,
results.json as harness/check.py writes it) with its report built.

A shape is found by trying seeds in order from SEED until the checker's answer has it;
the seed is part of the shape's name in every assertion message."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.check import check_file
from checker.explain import Counterexample
from checker.formats import write_jsonl
from checker.history import Op
from checker.linearizable import CheckResult, KeyResult
from checker.models import UNSET
from checker.set_full import check_set_full
from checker.simulate import (
    RegisterWorkload,
    Workload,
    inject_late_stale_read,
    keyed_register_history,
    register_history,
    simulate,
)
from harness.checkers import MAX_COUNTEREXAMPLES
from harness.report import build_report
from harness.report.figures import DRAW_ALL
from harness.results import RunResults, write_spec
from harness.spec import parse
from tests.report_support import SEED

TRIES = 60


@dataclass
class Shape:
    """How to make one shape: a history from a seed, the model that checks it, and what
    the checker's answer must show."""

    name: str
    model: str | None  # None: the set-full checker
    history: Callable[[int], list[Op]]
    has_shape: Callable[[KeyResult], bool] = lambda k: True
    initial: Any = UNSET


@dataclass
class Made:
    """A shape's run folder and what the checker said."""

    shape: str
    seed: int
    run_dir: Path
    result: CheckResult | None  # None for set-full
    results: dict[str, Any]  # results.json as written

    def invalid(self) -> list[KeyResult]:
        assert self.result is not None
        return [k for k in self.result.keys if k.valid is False]

    def counterexample(self) -> Counterexample:
        ce = self.invalid()[0].counterexample
        assert ce is not None, f"{self.shape} (seed {self.seed}): no counterexample"
        return ce


def corrupt_read(ops: list[Op], seed: int, values: int) -> list[Op]:
    """One ok read changed to return another of the `values` small values (which some
    operation may well have written: only a search can tell)."""
    rng = random.Random(seed)
    reads = [i for i, o in enumerate(ops) if o.type == "ok" and o.f == "read"]
    out = list(ops)
    i = rng.choice(reads)
    out[i] = dataclasses.replace(ops[i], value=rng.randrange(values))
    return out


def lost_element(seed: int, adds: int = 80, processes: int = 4) -> list[Op]:
    """A set workload on set `s0` (adds of 1, 2, …, reads of the whole set), applied
    atomically mid-call, whose reads stop seeing one acknowledged element once a later
    add completed: lost."""
    rng = random.Random(seed)
    ops: list[Op] = []
    present: list[int] = []
    lost: int | None = None
    t = 0
    element = 0
    for n in range(adds * 2):
        p = n % processes
        t += 1 + rng.randrange(5)
        if rng.random() < 0.5:
            element += 1
            ops.append(Op(0, p, "invoke", "add", element, "s0", t * 10**6))
            present.append(element)
            ops.append(Op(0, p, "ok", "add", element, "s0", (t + 1) * 10**6))
            if lost is None and element == adds // 4:
                lost = element
        else:
            ops.append(Op(0, p, "invoke", "read", None, "s0", t * 10**6))
            seen = [e for e in present if e != lost or element < adds // 2]
            ops.append(Op(0, p, "ok", "read", seen, "s0", (t + 1) * 10**6))
        t += 1
    return [dataclasses.replace(o, index=i) for i, o in enumerate(ops)]


def _zones_long(k: KeyResult) -> bool:
    ce = k.counterexample
    return (k.method == "zones" and ce is not None and ce.proof is not None
            and ce.proof.zones is not None and len(ce.window.ops) > DRAW_ALL)


def _pending(k: KeyResult) -> bool:
    ce = k.counterexample
    return ce is not None and any(o.completed is None for o in ce.window.ops)


def _method(name: str) -> Callable[[KeyResult], bool]:
    return lambda k: k.method == name and k.counterexample is not None


SHAPES: dict[str, Shape] = {s.name: s for s in [
    Shape("refutation", "cas-register", lambda seed: register_history(
        seed, RegisterWorkload(ops=200, inject="stale-read")), _method("refutation"), 0),
    Shape("zones-long-window", "cas-register", lambda seed: inject_late_stale_read(
        register_history(seed, RegisterWorkload(ops=300, p_timeout=0.9))), _zones_long, 0),
    Shape("zones-pending", "cas-register", lambda seed: register_history(
        seed, RegisterWorkload(ops=200, inject="inversion")),
        lambda k: k.method == "zones" and _pending(k), 0),
    Shape("search-etcd", "etcd", lambda seed: corrupt_read(simulate(seed, Workload(
        kind="etcd", ops=60, processes=4, keys=1, values=3, p_info=0.05)), seed, 3),
        _method("search")),
    Shape("register", "register", lambda seed: register_history(
        seed, RegisterWorkload(ops=200, p_cas=0.0, inject="stale-read"))),
    Shape("kv", "kv", lambda seed: keyed_register_history(seed, keys=4, ops_per_key=150)),
    Shape("set-full", None, lost_element),
]}


def make(shape: Shape, root: Path) -> Made:
    """The first seed from SEED whose history has the shape, as a run folder with its
    report."""
    for seed in range(SEED, SEED + TRIES):
        try:
            ops = shape.history(seed)
        except ValueError:  # the injection found no place: another seed
            continue
        run_dir = root / shape.name / str(seed)
        run_dir.mkdir(parents=True)
        with open(run_dir / "history.jsonl", "w", encoding="utf-8") as out:
            out.writelines(write_jsonl(o) for o in ops)
        result = None
        if shape.model is not None:
            result = check_file(str(run_dir / "history.jsonl"), shape.model, shape.initial,
                                "jsonl").result
            if not any(k.valid is False and shape.has_shape(k) for k in result.keys):
                continue
        return Made(shape.name, seed, run_dir, result, write_run(run_dir, ops, result))
    raise AssertionError(f"no seed in {SEED}..{SEED + TRIES - 1} gives {shape.name}")


def write_run(run_dir: Path, ops: list[Op], result: CheckResult | None) -> dict[str, Any]:
    """results.json as a run writes it (the linearizable verdict as harness/check.py
    keeps it), then the report."""
    workload = "register" if result is not None else "set"
    spec = parse({"name": run_dir.parent.name, "system": "store", "backend": "local",
                  "nodes": 3, "concurrency": 4, "time_limit": 10, "seed": SEED,
                  "workload": {"name": workload}})
    results = RunResults(spec.name, "shapes", spec, time.time() - 10,
                         system={"name": "store", "version": "simulated"})
    results.files = {"spec": "spec.yaml", "history": "history.jsonl",  # as the runner's
                     "results": "results.json", "harness_log": "harness.log",
                     "node_logs": "nodes/", "report": "report.html"}
    write_spec(run_dir / "spec.yaml", spec)
    if result is not None:
        results.checkers["linearizable"] = result.to_json(
            max_counterexamples=MAX_COUNTEREXAMPLES)
    else:
        results.checkers["set-full"] = check_set_full(ops).to_json()
    results.ended = time.time()
    results.write(run_dir / "results.json")
    build_report(run_dir)
    return json.loads((run_dir / "results.json").read_text())
