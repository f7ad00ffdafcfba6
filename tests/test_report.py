"""Reports of real runs: results.json against its schema, report.html's content and
escaping, `splitbrain report`, JUnit XML and the CI summary."""

from __future__ import annotations

import copy
import dataclasses
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.junit import summary
from harness.report import build_report
from tests.report_support import HOSTILE, SEED, SPECS, Runs, real_runs

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "results.schema.json").read_text())


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return real_runs(tmp_path_factory.mktemp("report-runs"))


def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("name", ["kills", "laggy", "set"])
def test_results_json_of_a_real_run_validates_against_the_schema(runs: Runs, name: str) -> None:
    results = runs.results(name)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator().iter_errors(results)]
    assert not errors, f"seed {SEED}: {errors[:10]}"


def test_the_runs_cover_what_the_schema_describes(runs: Runs) -> None:
    kills, laggy, set_ = runs.results("kills"), runs.results("laggy"), runs.results("set")
    assert kills["valid"] is True and kills["stats"]["faults"], f"seed {SEED}: no fault"
    assert laggy["valid"] is False
    assert laggy["checkers"]["linearizable"]["keys"][0]["counterexample"]["explanation"]
    assert set_["checkers"]["set-full"]["valid"] is True
    assert all(r["files"]["report"] == "report.html" for r in (kills, laggy, set_))


def test_the_schema_rejects_what_is_not_a_results_json(runs: Runs) -> None:
    good = runs.results("laggy")
    v = validator()
    for path, bad_value in [(("valid",), "maybe"), (("version",), 2),
                            (("stats", "ops", "read", "oops"), 1),
                            (("checkers", "linearizable", "keys", 0, "counterexample", "window",
                              "initial"), "sometimes"),
                            (("started",), "yesterday")]:
        bad = copy.deepcopy(good)
        target: Any = bad
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = bad_value
        assert not v.is_valid(bad), f"{path} = {bad_value!r} was accepted"
    del good["checkers"]
    assert not v.is_valid(good)


class _Scripts(html.parser.HTMLParser):
    """The page's <script> elements and its visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if not self._in_script:
            self.text.append(data)


def parse_page(path: Path) -> _Scripts:
    parser = _Scripts()
    parser.feed(path.read_text())
    return parser


@pytest.mark.parametrize("name", ["kills", "laggy", "set"])
def test_every_run_ends_with_a_self_contained_report(runs: Runs, name: str) -> None:
    report = runs.dirs[name] / "report.html"
    page = parse_page(report)
    assert page.scripts and all("src" not in s for s in page.scripts), "a script from outside"
    source = report.read_text()
    assert "<link" not in source and 'src="http' not in source  # nothing to fetch
    text = " ".join(page.text)
    first = {"kills": "Valid: no consistency violation found",
             "laggy": "INVALID: the system broke its consistency claim",
             "set": "Valid: no consistency violation found"}[name]
    assert first in text
    assert text.index(first) < text.index("The test")  # the verdict first
    for link in ("results.json", "history.jsonl", "spec.yaml", "nodes/n1.log"):
        assert f'href="{link}"' in source


def test_the_report_explains_each_key_that_is_not_linearizable(runs: Runs) -> None:
    results = runs.results("laggy")
    text = " ".join(parse_page(runs.dirs["laggy"] / "report.html").text)
    keys = results["checkers"]["linearizable"]["keys"]
    assert keys
    for k in keys:
        assert f"Key {k['key']}" in text
        assert k["counterexample"]["explanation"] in text
    source = (runs.dirs["laggy"] / "report.html").read_text()
    assert source.count('class="counterexample"') == len(keys)
    assert source.count('id="chart-counterexample-') == len(keys)


def test_the_set_report_shows_what_became_of_the_elements(runs: Runs) -> None:
    text = " ".join(parse_page(runs.dirs["set"] / "report.html").text)
    checked = runs.results("set")["checkers"]["set-full"]
    assert f"{checked['attempted']} elements added, {checked['stable']} stable" in text
    assert "0 lost, 0 stale, 0 unexpected" in text


def test_the_faults_are_in_the_report(runs: Runs) -> None:
    results = runs.results("kills")
    source = (runs.dirs["kills"] / "report.html").read_text()
    fault = results["stats"]["faults"][0]
    assert f"<td class=\"num\">{fault['start_s']}</td>" in source
    assert '"type":"rect"' in source  # fault windows shaded on the charts


def test_values_from_the_system_are_shown_as_text(runs: Runs) -> None:
    report = build_report(runs.dirs["hostile"])
    source = report.read_text()
    assert HOSTILE not in source
    page = parse_page(report)
    text = " ".join(page.text)
    assert HOSTILE in text  # shown, as text
    # plotly, the charts' data and the code that draws them; nothing the system sent
    assert [s.get("type") for s in page.scripts] == [None, "application/json", None]


def test_splitbrain_report_checks_the_stored_history_again(runs: Runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "laggy" / "again"
    shutil.copytree(runs.dirs["laggy"], run_dir, ignore=shutil.ignore_patterns("data"))
    stale = runs.results("laggy")
    stale["valid"] = True
    stale["checkers"] = {"stats": {"valid": True}}
    (run_dir / "results.json").write_text(json.dumps(stale))
    (run_dir / "report.html").unlink()
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", str(run_dir), "--junit", str(junit)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["valid"] is False and results["rechecked"]
    assert results["checkers"]["linearizable"]["invalid_keys"] == \
        runs.results("laggy")["checkers"]["linearizable"]["invalid_keys"]
    assert validator().is_valid(results)
    assert (run_dir / "report.html").is_file()
    assert done.stdout.startswith("SPLITBRAIN laggy: INVALID")
    assert ET.parse(junit).getroot().get("failures") != "0"


def test_splitbrain_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "no results.json" in done.stderr


def junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {c.get("name", ""): c for c in root.iter("testcase")}


def test_junit_has_a_case_per_checker_and_per_failing_key(runs: Runs, tmp_path: Path) -> None:
    from harness.junit import write_run

    laggy = runs.results("laggy")
    write_run(laggy, tmp_path / "laggy.xml", runs.dirs["laggy"])
    cases = junit_cases(tmp_path / "laggy.xml")
    bad = laggy["checkers"]["linearizable"]["invalid_keys"]
    assert {"linearizable", "stats"} <= set(cases)
    for key in bad:
        failure = cases[f"linearizable[{key}]"].find("failure")
        assert failure is not None and "cannot take effect" in (failure.get("message") or "")
    assert cases["stats"].find("failure") is None
    root = ET.parse(tmp_path / "laggy.xml").getroot()
    assert root.get("failures") == str(len(bad) + 1) and root.get("tests") == str(len(cases))

    write_run(runs.results("set"), tmp_path / "set.xml")
    cases = junit_cases(tmp_path / "set.xml")
    assert set(cases) == {"set-full", "stats"}
    assert all(c.find("failure") is None for c in cases.values())


def test_junit_carries_hostile_values_as_text(runs: Runs, tmp_path: Path) -> None:
    from harness.junit import write_run

    hostile = json.loads((runs.dirs["hostile"] / "results.json").read_text())
    write_run(hostile, tmp_path / "h.xml")
    cases = junit_cases(tmp_path / "h.xml")
    assert f"linearizable[{HOSTILE}]" in cases  # parsed back as the same text


def test_run_and_check_write_junit(runs: Runs, tmp_path: Path) -> None:
    spec = tmp_path / "laggy.yaml"
    spec.write_text(json.dumps({**SPECS["laggy"], "time_limit": 2, "seed": SEED}))
    junit = tmp_path / "run.xml"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(spec), "--results",
         str(tmp_path / "results"), "--quiet", "--junit", str(junit)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode in (0, 1), f"seed {SEED}: {done.stdout}{done.stderr}"
    assert "SPLITBRAIN laggy:" in done.stdout and "report: " in done.stdout
    assert "linearizable" in junit_cases(junit)

    junit = tmp_path / "check.xml"
    history = runs.dirs["laggy"] / "history.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", str(history), "--junit", str(junit)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    cases = junit_cases(junit)
    bad = runs.results("laggy")["checkers"]["linearizable"]["invalid_keys"]
    assert {f"linearizable[{k}]" for k in bad} <= set(cases)


def test_the_ci_summary_leads_with_the_verdict(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    text = summary(runs.results("laggy"), runs.dirs["laggy"])
    lines = text.splitlines()
    assert lines[0] == "SPLITBRAIN laggy: INVALID"
    assert any(line.startswith("::error title=splitbrain laggy::") for line in lines)
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert "::error" not in summary(runs.results("kills"))
    assert summary(runs.results("kills")).splitlines()[0] == "SPLITBRAIN kills: valid"


def test_the_nightly_script_runs(tmp_path: Path) -> None:
    """docs/nightly-ci.md's script, as written there, on the local backend: it keeps
    the results and the JUnit XML and exits 0 when every run is valid."""
    doc = (ROOT / "docs" / "nightly-ci.md").read_text()
    script = re.search(r"```bash\n(#!/usr/bin/env bash\n.*?)```", doc, re.S)
    assert script, "the script block is missing"
    work = tmp_path / "repo"
    (work / "specs").mkdir(parents=True)
    (work / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "specs" / "set.yaml", work / "specs")
    (work / ".venv" / "bin" / "splitbrain").symlink_to(Path(sys.executable).parent /
                                                        "splitbrain")
    (work / "nightly.sh").write_text(script.group(1))
    done = subprocess.run(
        ["bash", "nightly.sh"], cwd=work, capture_output=True, text=True, timeout=600,
        env={**os.environ, "SPECS": "specs/set.yaml", "SYSTEMS": "store",
             "RUN_ARGS": f"--backend local --time-limit 2 --nodes 3 --seed {SEED}"},
    )
    assert done.returncode == 0, f"seed {SEED}: {done.stdout}{done.stderr}"
    assert "set-store: valid" in done.stdout and "SPLITBRAIN set: valid" in done.stdout
    assert ET.parse(work / "junit" / "set-store.xml").getroot().get("failures") == "0"
    runs = list((work / "results" / "set").glob("*/report.html"))
    assert runs
    # a valid run: the nodes' logs kept, their data directories not (collect_data: invalid)
    assert (runs[0].parent / "nodes" / "n1.log").is_file()
    assert not list(runs[0].parent.glob("nodes/*/data")) and not (runs[0].parent / "data").exists()


def test_a_large_history_keeps_every_operation_and_its_culprit() -> None:
    """Above the detail limit the charts go WebGL and lose per-operation text, but every
    operation is still drawn and the culprit of the counterexample is marked."""
    from checker.check import check_file
    from checker.formats.jsonl import write_jsonl
    from checker.simulate import Workload, inject_impossible, simulate
    from harness.report import figures

    n = figures.DETAIL_LIMIT + 5_000
    ops = inject_impossible(simulate(SEED, Workload(kind="etcd", ops=n, processes=8,
                                                    keys=50, p_info=0.01)), SEED)
    ops = [dataclasses.replace(o, index=i) for i, o in enumerate(ops)]
    client = figures.client_ops(ops, 8)
    assert len(client) == n
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
        out.writelines(write_jsonl(o) for o in ops)
    checked = check_file(out.name, "kv", None, "jsonl").result.to_json()
    Path(out.name).unlink()
    assert checked["valid"] is False, f"seed {SEED}"
    culprit = checked["keys"][0]["counterexample"]["op"]["invoke_index"]
    fig = figures.overview(client, [], [], {culprit}, float(client.end.max()))
    timeline = [t for t in fig.data if t.yaxis == "y" and t.type == "scattergl"]
    latency = [t for t in fig.data if t.yaxis == "y2" and t.type == "scattergl"]
    assert sum(len(t.x) for t in timeline) == n and sum(len(t.x) for t in latency) == n
    assert all(t.text is None for t in timeline)  # no per-operation text at this size
    marked = [t for t in fig.data if t.name == "cannot be linearized"]
    assert marked and list(marked[0].customdata) == [culprit]


def test_a_run_that_could_not_start_is_an_error_for_ci(tmp_path: Path) -> None:
    from harness.junit import write_run

    results = {"test": "bad", "valid": "unknown", "error": "no Docker", "checkers": {},
               "interrupted": False}
    assert summary(results).splitlines()[:2] == ["SPLITBRAIN bad: could not run",
                                                 "  error: no Docker"]
    write_run(results, tmp_path / "bad.xml")
    root = ET.parse(tmp_path / "bad.xml").getroot()
    assert (root.get("tests"), root.get("errors"), root.get("failures")) == ("1", "1", "0")
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.text == "no Docker"


def test_splitbrain_report_no_check_only_rebuilds_the_page(runs: Runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "set" / "again"
    shutil.copytree(runs.dirs["set"], run_dir, ignore=shutil.ignore_patterns("data"))
    before = (run_dir / "results.json").read_text()
    (run_dir / "report.html").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", "--no-check", str(run_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (run_dir / "results.json").read_text() == before
    assert "Valid: no consistency violation found" in (run_dir / "report.html").read_text()


@pytest.mark.parametrize("name", ["kills", "laggy", "set"])
def test_a_runs_spec_yaml_reads_back_as_the_spec_it_ran(runs: Runs, name: str) -> None:
    from harness.spec import load

    spec = load(runs.dirs[name] / "spec.yaml")
    assert json.loads(json.dumps(spec.to_json())) == runs.results(name)["spec"]
