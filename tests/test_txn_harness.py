"""The transactional workloads in the harness: what the generators make, the checkers
composed by name with one verdict, and a run's anomalies in results.json, the CLI's
words, JUnit and report.html (no Docker: histories of the simulated database)."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from checker.formats import write_jsonl
from checker.txn.simulate import TxnWorkload, simulate
from checker.verdict import Verdict
from harness.check import check_history
from harness.checkers import CHECKERS, compose, named
from harness.generator import Context, Worker
from harness.junit import run_suite, summary
from harness.ops import Invocation
from harness.report import build_report
from harness.results import EXIT_INVALID, RunResults, run_exit_code, write_spec
from harness.spec import parse
from harness.workload import Append, Wr, make_workload

SEED = 2020
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results.schema.json")
                    .read_text())


def invocations(gen: Any, n: int, seed: int = SEED) -> list[Invocation]:
    ctx = Context(random.Random(seed), [Worker(i, i) for i in range(4)])
    out = []
    for i in range(n):
        op = gen.op(ctx, Worker(i % 4, i % 4))
        assert isinstance(op, Invocation)
        out.append(op)
    return out


@pytest.mark.parametrize("cls", [Append, Wr])
def test_transactions_are_well_formed_and_values_unique_per_key(cls: type) -> None:
    w = cls(key_count=3, min_length=2, max_length=3, writes_per_key=5, read_ratio=0.4)
    ops = invocations(w.generator(), 300)
    written: Counter[tuple[Any, Any]] = Counter()
    for op in ops:
        assert op.f == "txn" and 2 <= len(op.value) <= 3, f"seed {SEED}: {op}"
        for f, k, v in op.value:
            assert f in ("r", w.write_f), f"seed {SEED}: {op}"
            if f == "r":
                assert v is None
            else:
                written[(k, v)] += 1
    assert set(written.values()) == {1}, f"seed {SEED}: a value written twice"
    per_key = Counter(k for k, _ in written)
    assert max(per_key.values()) <= 5 and len(per_key) > 3, f"seed {SEED}: {per_key}"
    ratio = sum(f == "r" for op in ops for f, _, _ in op.value) / sum(len(o.value) for o in ops)
    assert 0.3 < ratio < 0.5, f"seed {SEED}: read ratio {ratio}"
    final = invocations(w.final(), len(w._used))
    assert sorted(o.value[0][1] for o in final) == sorted(w._used)
    assert all(o.final and o.value == [["r", o.key, None]] for o in final)


def test_workloads_say_their_api_checkers_and_client_options() -> None:
    append = make_workload("append", 5, {"reads": "serializable"})
    assert append.api == "v3" and append.checkers == ("txn", "stats")
    assert append.client_options() == {"reads": "serializable", "timeout": 5.0, "lists": True}
    assert make_workload("wr", 5, {}).client_options()["lists"] is False
    v3 = make_workload("register", 5, {"api": "v3", "cas_guard": "revision"})
    assert v3.api == "v3" and v3.client_options()["reads"] == "linearizable"
    assert v3.client_options()["cas_guard"] == "revision"
    assert make_workload("register", 5, {}).client_options()["reads"] == "quorum"
    assert compose(append.checkers) == [CHECKERS["txn"], CHECKERS["stats"]]


def test_composing_an_unknown_checker_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown checker 'elle'; known: linearizable, "
                       "set-full, txn, stats"):
        compose(["txn", "elle"])
    assert named("from-the-future").detail({"valid": True}) == ""


@pytest.mark.parametrize(("valid", "verdict", "word"), [
    (True, Verdict.VALID, "valid"), (False, Verdict.INVALID, "INVALID"),
    ("unknown", Verdict.UNKNOWN, "unknown"), (None, Verdict.UNKNOWN, "unknown"),
    ("invalid", Verdict.INVALID, "INVALID")])
def test_a_verdict_reads_back_from_results_json(valid: Any, verdict: Verdict,
                                                word: str) -> None:
    assert Verdict.of(valid) is verdict and verdict.word == word
    assert Verdict.of(verdict.to_json()) is verdict


def test_combined_verdicts_invalid_first_then_unknown() -> None:
    assert Verdict.combine([Verdict.VALID, Verdict.UNKNOWN]) is Verdict.UNKNOWN
    assert Verdict.combine([Verdict.UNKNOWN, Verdict.INVALID]) is Verdict.INVALID
    assert Verdict.combine([Verdict.VALID]) is Verdict.VALID


def synthetic_run(run_dir: Path, workload: str, p_stale: float) -> dict[str, Any]:
    """A run folder as `splitbrain run` leaves it, its history from the simulated
    strict-serializable database (`p_stale`: some reads answered from older versions)."""
    run_dir.mkdir(parents=True)
    ops = simulate(TxnWorkload(kind=workload, txns=400, p_stale=p_stale), SEED)  # type: ignore[arg-type]
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(op) for op in ops)
    spec = parse({"name": f"sim-{workload}", "system": "etcd", "backend": "local",
                  "nodes": 3, "concurrency": 5, "time_limit": 10, "seed": SEED,
                  "workload": {"name": workload}})
    write_spec(run_dir / "spec.yaml", spec)
    results = RunResults(spec.name, "sim", spec, time.time() - 10,
                         system={"name": "etcd", "version": "simulated"})
    results.files = {"spec": "spec.yaml", "history": "history.jsonl",
                     "results": "results.json"}
    check_history(spec, run_dir / "history.jsonl", results)
    results.ended = time.time()
    results.write(run_dir / "results.json")
    assert run_exit_code(results) == (EXIT_INVALID if p_stale else 0), f"seed {SEED}"
    written = json.loads((run_dir / "results.json").read_text())
    validator = jsonschema.validators.validator_for(SCHEMA)
    validator(SCHEMA, format_checker=validator.FORMAT_CHECKER).validate(written)
    return written


@pytest.mark.parametrize("workload", ["append", "wr"])
def test_a_valid_transactional_run(tmp_path: Path, workload: str) -> None:
    results = synthetic_run(tmp_path / "run", workload, 0.0)
    txn = results["checkers"]["txn"]
    assert results["valid"] is True and txn["valid"] is True and txn["verdict"] == "valid"
    assert txn["txns"] == 400 and txn["anomalies"] == [] and txn["workload"] == workload
    assert "no anomaly" in named("txn").detail(txn)


@pytest.fixture(scope="module")
def stale(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    run_dir = tmp_path_factory.mktemp("txn") / "stale"
    return run_dir, synthetic_run(run_dir, "append", 0.2)


def test_stale_reads_are_anomalies_in_results_cli_and_junit(
        stale: tuple[Path, dict[str, Any]]) -> None:
    _, results = stale
    txn = results["checkers"]["txn"]
    assert results["valid"] is False and txn["verdict"] == "invalid", f"seed {SEED}"
    assert "strict-serializable" in txn["not"] + txn["also_not"]
    assert any(a.get("cycle") for a in txn["anomalies"]), f"seed {SEED}"
    detail = named("txn").detail(txn)
    first = txn["anomalies"][0]
    assert f"{first['name']}: {first['explanation'][0]}" in detail
    assert first["explanation"][1] in detail
    suite = run_suite(results)
    failure = suite.find("testcase[@name='txn']/failure")
    assert failure is not None and first["name"] in failure.get("message", "")
    assert first["explanation"][0] in (failure.text or "")
    lines = summary(results).splitlines()
    assert lines[0].endswith("INVALID")
    assert any(line.startswith("  txn: INVALID (400 transactions;") for line in lines)


def test_the_report_shows_each_anomaly_its_lines_and_its_labelled_cycle(
        stale: tuple[Path, dict[str, Any]]) -> None:
    run_dir, results = stale
    page = build_report(run_dir).read_text()
    txn = results["checkers"]["txn"]
    assert 'id="transactions"' in page and "INVALID: the system broke" in page
    history = (run_dir / "history.jsonl").read_text().splitlines()
    charts = json.loads(re.search(r'<script type="application/json" id="charts">(.*?)'
                                  r"</script>", page, re.S).group(1))  # type: ignore[union-attr]
    for i, a in enumerate(txn["anomalies"][:20]):
        section = page.split(f'id="anomaly-{i + 1}"')[1].split("</section>")[0]
        assert a["name"] in section and _html(a["explanation"][0]) in section
        for t in a["txns"]:
            for n in (t.get("invoke_line"), t.get("complete_line")):
                if n is not None:
                    assert f"{n}: {_html(history[n - 1])}" in section, (i, n)
        if not a.get("cycle"):
            continue
        labels = [n["text"] for n in charts[f"cycle-{i + 1}"]["layout"]["annotations"]
                  if n["text"]]
        assert len(labels) == len(a["cycle"])
        for step, label in zip(a["cycle"], labels, strict=True):
            assert label.startswith(step["rel"])
            if "key" in step:
                assert f"key {step['key']}" in label


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def test_the_anomalies_draw_in_chromium_with_their_edge_labels(
        stale: tuple[Path, dict[str, Any]]) -> None:
    """Without Chromium this skips, saying why, except under CI (CI=true)."""
    from selenium.webdriver.common.by import By

    from harness.report.browser import chromium, missing, open_report

    why = missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is needed under CI: {why}")
        pytest.skip(why)
    run_dir, results = stale
    build_report(run_dir)
    cycle = next(i for i, a in enumerate(results["checkers"]["txn"]["anomalies"])
                 if a.get("cycle"))
    steps = results["checkers"]["txn"]["anomalies"][cycle]["cycle"]
    with chromium() as driver:
        page = open_report(driver, run_dir / "report.html", timeout=120)
        assert page.state == "true", f"seed {SEED}: {page.state!r}"
        assert not [m for m in page.console if m.get("level") == "SEVERE"], page.console
        chart = driver.find_element(By.ID, f"chart-cycle-{cycle + 1}")
        drawn = [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".annotation-text")]
        labels = [t for t in drawn if t]
        assert len(labels) == len(steps), (labels, steps)
        assert [label.split(" ")[0] for label in labels] == [s["rel"] for s in steps]
