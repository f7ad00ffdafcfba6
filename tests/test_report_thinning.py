"""A long history's report is thinned: it still draws every fault, every culprit and
every operation near them, counts every operation in its throughput, and says what it
left out. The history is read streaming, as `splitbrain report` reads it."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from checker.formats import write_jsonl
from checker.history import NEMESIS, Op
from checker.simulate import Workload, inject_impossible, simulate, with_faults
from harness.check import check_history
from harness.recorder import read_history
from harness.report import build_report, figures
from harness.report.browser import chromium, missing, open_report
from harness.results import RunResults, write_spec
from harness.spec import parse

SEED = 11
OPS = 8_000


def synthetic_run(run_dir: Path, ops: list[Op], seed: int) -> dict[str, Any]:
    """A run folder (spec, history, results.json) as `splitbrain run` leaves it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    spec = parse({"name": "thinning", "system": "store", "backend": "local", "nodes": 3,
                  "concurrency": 6, "time_limit": 60, "seed": seed,
                  "workload": {"name": "register"}, "nemesis": {"faults": ["kill"]}})
    write_spec(run_dir / "spec.yaml", spec)
    results = RunResults(spec.name, "thin", spec, time.time() - 60,
                         system={"name": "store", "version": "simulated"})
    check_history(spec, run_dir / "history.jsonl", results)
    results.ended = time.time()
    results.write(run_dir / "results.json")
    return json.loads((run_dir / "results.json").read_text())


def charts(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="charts">(.*?)</script>', page,
                      re.S)
    assert found
    return json.loads(found.group(1))


def numbers(value: Any) -> np.ndarray:
    """A plotly array, plain or typed (base64)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


@pytest.fixture(scope="module")
def thinned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    mp = pytest.MonkeyPatch()
    mp.setattr(figures, "THIN_ABOVE", 2_000)
    mp.setattr(figures, "DETAIL_BUDGET", 400)
    mp.setattr(figures, "SAMPLE_BUDGET", 400)
    try:
        client = inject_impossible(simulate(SEED, Workload(
            kind="etcd", ops=OPS, processes=6, keys=20, values=30, p_info=0.02)), SEED)
        ops = with_faults(client, SEED, faults=6)
        run_dir = tmp_path_factory.mktemp("thinned")
        results = synthetic_run(run_dir, ops, SEED)
        build_report(run_dir)
    finally:
        mp.undo()
    return run_dir, results


def test_the_page_says_it_is_thinned(thinned: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = thinned
    page = (run_dir / "report.html").read_text()
    said = re.search(r"Showing ([\d,]+) of ([\d,]+) operations: every operation within "
                     r"([\d.]+) s of each fault", page)
    assert said, f"seed {SEED}: no thinning sentence"
    drawn, total = (int(said.group(i).replace(",", "")) for i in (1, 2))
    assert total == OPS and drawn < total / 4, f"seed {SEED}: {drawn} of {total}"
    assert "(the first" not in page, f"seed {SEED}: the detail was capped"


def test_every_fault_culprit_and_nearby_operation_is_drawn(
        thinned: tuple[Path, dict[str, Any]]) -> None:
    run_dir, results = thinned
    page = (run_dir / "report.html").read_text()
    overview = charts(page)["overview"]
    window = float(re.search(r"every operation within ([\d.]+) s", page).group(1))  # type: ignore[union-attr]
    faults = results["stats"]["faults"]
    assert len(faults) == 6, f"seed {SEED}"
    shaded = [s for s in overview["layout"]["shapes"] if s.get("type") == "rect"]
    assert {round(s["x0"], 3) for s in shaded} == {f["start_s"] for f in faults}
    ops = read_history(run_dir / "history.jsonl")
    nemesis = [t for t in overview["data"] if t["name"] == "nemesis"]
    assert len(nemesis[0]["x"]) == sum(1 for o in ops if o.process == NEMESIS)

    lin = results["checkers"]["linearizable"]
    culprits = {k["counterexample"]["op"]["invoke_index"] for k in lin["keys"]}
    assert lin["valid"] is False and culprits, f"seed {SEED}"
    marked = [t for t in overview["data"] if t["name"] == "cannot be linearized"]
    assert set(numbers(marked[0]["customdata"]).tolist()) == culprits

    timeline = [t for t in overview["data"] if "error_x" in t]  # the bars of the timeline
    drawn = set(np.concatenate([numbers(t["customdata"]) for t in timeline]).tolist())
    assert culprits <= drawn
    client = figures.client_ops(ops, 6)
    focus = [t for f in faults for t in (f["start_s"], f["end_s"]) if t is not None]
    focus += [float(client.start[client.index == c][0]) for c in culprits]
    near = {int(client.index[i]) for i in range(len(client))
            if any(client.start[i] - window <= at <= client.end[i] + window for at in focus)}
    assert near and near <= drawn, f"seed {SEED}: {len(near - drawn)} near ones left out"


def test_throughput_counts_every_operation(thinned: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = thinned
    overview = charts((run_dir / "report.html").read_text())["overview"]
    rates = [t for t in overview["data"] if str(t["name"]).endswith("per second")]
    x = numbers(rates[0]["x"])
    width = float(x[1] - x[0])
    counted = sum(float(numbers(t["y"]).sum()) * width for t in rates)
    assert abs(counted - OPS) < 0.01 * OPS, f"seed {SEED}: {counted}"


def test_thinned_or_not_the_collector_agrees_with_the_whole_history(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the bound nothing is thinned; above it the series still counts all."""
    monkeypatch.setattr(figures, "SAMPLE_BUDGET", 200)
    ops = with_faults(simulate(SEED, Workload(kind="etcd", ops=3_000, processes=5, keys=3)),
                      SEED, faults=3)
    whole = figures.collect(ops, 5, thin_above=None)
    assert whole.thinning is None and len(whole.ops) == 3_000
    part = figures.collect(iter(ops), 5, focus_s=[0.2], window_s=0.01, thin_above=100)
    assert part.thinning is not None and part.thinning.total == 3_000
    assert len(part.ops) == part.thinning.drawn < 600 and part.thinning.one_in > 1
    for outcome, counts in whole.series.counts.items():
        assert part.series.counts[outcome] == counts


def test_a_thinned_report_draws_in_chromium_and_shows_the_thinning(
        thinned: tuple[Path, dict[str, Any]]) -> None:
    """Without Chromium this skips, saying why, except under CI (CI=true)."""
    from selenium.webdriver.common.by import By

    why = missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is needed under CI: {why}")
        pytest.skip(why)
    run_dir, _ = thinned
    with chromium() as driver:
        page = open_report(driver, run_dir / "report.html", timeout=120)
        assert page.state == "true", f"seed {SEED}: {page.state!r}"
        assert not [m for m in page.console if m.get("level") == "SEVERE"], page.console
        note = driver.find_element(By.ID, "thinning")
        assert note.is_displayed() and "Showing" in note.text
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-overview .main-svg")
