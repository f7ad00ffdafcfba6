"""Every counterexample shape the checker produces reaches the report: made by the
checker from simulated histories (tests/report_shapes.py), kept in results.json as
typed records that read back as they were written, and rendered (key, culprit,
explanation). Many invalid keys: the first violation in time leads, every key is in the
table, a bounded number are drawn and kept whole in results.json."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from checker.explain import (
    Counterexample,
    DescribedOp,
    PartialLinearization,
    Proof,
    Step,
    Summary,
    Window,
)
from checker.history import Operation
from checker.linearizable import CheckResult, KeyResult
from checker.set_full import Quantiles, SetFullResult, SetKeyResult
from checker.simulate import keyed_register_history
from harness.checkers import MAX_COUNTEREXAMPLES
from harness.report.checked import MAX_DRAWN
from harness.report.figures import DRAW_ALL, drawn_ops
from tests.report_shapes import SHAPES, Made, make, write_run
from tests.report_support import SEED

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "results.schema.json").read_text())
LINEARIZABLE = [name for name, s in SHAPES.items() if s.model is not None]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    root = tmp_path_factory.mktemp("shapes")
    return {name: make(shape, root) for name, shape in SHAPES.items()}


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._script = False

    def handle_data(self, data: str) -> None:
        if not self._script:
            self.parts.append(data)


def page_text(report: Path) -> str:
    parser = _Text()
    parser.feed(report.read_text())
    return " ".join("".join(parser.parts).split())


def squash(text: str) -> str:
    return " ".join(text.split())


def schema_errors(results: dict[str, Any]) -> list[str]:
    cls = jsonschema.validators.validator_for(SCHEMA)
    v = cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(results)]


# -- the shapes are what they say ---------------------------------------------------------------


def test_the_checker_made_every_shape(made: dict[str, Made]) -> None:
    def only(name: str) -> KeyResult:
        bad = made[name].invalid()
        assert bad, f"{name} (seed {made[name].seed}): valid"
        return bad[0]

    assert only("refutation").method == "refutation"
    long = only("zones-long-window")
    assert long.method == "zones" and long.counterexample is not None
    assert long.counterexample.proof is not None and long.counterexample.proof.zones
    assert len(long.counterexample.window.ops) > DRAW_ALL, f"seed {made['zones-long-window'].seed}"
    pending = only("zones-pending").counterexample
    assert pending is not None and any(o.completed is None for o in pending.window.ops)
    assert only("search-etcd").method == "search"
    assert made["kv"].result is not None and made["kv"].result.model == "kv"
    assert len(made["kv"].invalid()) >= 2
    assert made["register"].result is not None and made["register"].result.model == "register"
    assert made["set-full"].results["checkers"]["set-full"]["lost"] == 1


# -- results.json: typed records that read back as written ---------------------------------------


def _records(ce: Counterexample) -> list[Any]:
    out: list[Any] = [ce, ce.op, ce.window, ce.summary(), *ce.concurrent, *ce.window.ops]
    if ce.proof is not None:
        out += [ce.proof, *ce.proof.ops()]
    for path in ce.partial_linearizations:
        out += [path, *path.steps]
    out += [o.operation for o in out if isinstance(o, DescribedOp) and o.operation]
    return out


def _round_trip(record: Any) -> None:
    written = json.loads(json.dumps(record.to_json()))
    again = type(record).from_json(written).to_json()
    assert json.dumps(again, sort_keys=True) == json.dumps(written, sort_keys=True), \
        type(record).__name__


@pytest.mark.parametrize("name", LINEARIZABLE)
def test_every_record_reads_back_as_it_was_written(made: dict[str, Made], name: str) -> None:
    result = made[name].result
    assert result is not None
    kinds: set[type] = set()
    for k in result.keys:
        _round_trip(k)
        if k.counterexample is not None:
            for record in _records(k.counterexample):
                _round_trip(record)
                kinds.add(type(record))
    _round_trip(result)
    stored = made[name].results["checkers"]["linearizable"]
    assert CheckResult.from_json(stored).to_json() == stored
    assert {Counterexample, DescribedOp, Window, Summary, Operation} <= kinds, name
    if name in ("refutation", "zones-long-window"):
        assert Proof in kinds
    if name == "search-etcd":
        assert {PartialLinearization, Step} <= kinds


def test_set_full_reads_back_as_it_was_written(made: dict[str, Made]) -> None:
    stored = made["set-full"].results["checkers"]["set-full"]
    result = SetFullResult.from_json(stored)
    assert result.to_json() == stored
    assert all(isinstance(k, SetKeyResult) for k in result.keys)
    assert isinstance(result.keys[0].visibility_ms, Quantiles)
    assert result.lost == 1


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_shapes_results_json_fits_the_schema(made: dict[str, Made], name: str) -> None:
    errors = schema_errors(made[name].results)
    assert not errors, f"{name} (seed {made[name].seed}): {errors[:5]}"
    assert made[name].results["files"]["report"] == "report.html"


# -- the report shows each shape --------------------------------------------------------------


@pytest.mark.parametrize("name", LINEARIZABLE)
def test_the_report_shows_each_shapes_counterexample(made: dict[str, Made], name: str) -> None:
    m = made[name]
    report = m.run_dir / "report.html"
    text = page_text(report)
    for k in m.invalid():
        ce = k.counterexample
        assert ce is not None
        where = f"{name} (seed {m.seed}), key {k.key}"
        assert f"Key {json.dumps(k.key)}" in text, where
        assert squash(ce.explanation) in text, where
        assert f"process {ce.op.process}: {squash(ce.op.description)}" in text, where
        if ce.proof is not None and ce.proof.zones:
            assert squash(ce.proof.zones) in text, where
    source = report.read_text()
    assert source.count('class="counterexample"') == len(m.invalid())


def test_a_long_zone_window_is_drawn_around_its_culprit(made: dict[str, Made]) -> None:
    """The crash of issue 19: drawn_ops walked the zone proof's text as operations."""
    m = made["zones-long-window"]
    ce = m.counterexample()
    shown, total = drawn_ops(ce)
    assert len(shown) < total and total >= len(ce.window.ops) > DRAW_ALL
    assert ce.op.invoked in {o.invoked for o in shown}
    text = page_text(m.run_dir / "report.html")
    assert f"The chart draws {len(shown)} of these {total} operations" in text


def test_the_set_full_report_shows_the_lost_element(made: dict[str, Made]) -> None:
    text = page_text(made["set-full"].run_dir / "report.html")
    assert "1 lost, 0 stale" in text and "INVALID" in text


# -- many invalid keys --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A register run whose keys are nearly all spoiled by a stale read: more invalid keys
    than MAX_DRAWN."""
    from checker.check import check_file
    from checker.formats import write_jsonl

    run_dir = tmp_path_factory.mktemp("many") / "many" / "run"
    run_dir.mkdir(parents=True)
    ops = keyed_register_history(SEED, keys=MAX_DRAWN + 12, ops_per_key=100, p_stale=1.0)
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as out:
        out.writelines(write_jsonl(o) for o in ops)
    result = check_file(str(run_dir / "history.jsonl"), "kv", fmt="jsonl").result
    return Made("many", SEED, run_dir, result, write_run(run_dir, ops, result))


def test_results_json_keeps_every_verdict_and_a_bounded_number_of_counterexamples(
        many: Made) -> None:
    bad = many.invalid()
    assert len(bad) > MAX_COUNTEREXAMPLES, f"seed {SEED}: only {len(bad)} invalid keys"
    stored = many.results["checkers"]["linearizable"]
    assert stored["invalid_keys"] == [k.key for k in bad]
    whole = [k for k in stored["keys"] if "counterexample" in k]
    assert len(whole) == MAX_COUNTEREXAMPLES
    assert stored["counterexamples_omitted"] == len(bad) - MAX_COUNTEREXAMPLES
    assert all(k["summary"]["explanation"] and k["method"] for k in stored["keys"])
    # the full ones are the earliest violations
    first = sorted(k.first_bad_index or 0 for k in bad)[:MAX_COUNTEREXAMPLES]
    assert sorted(k["counterexample"]["op"]["invoke_index"] for k in whole) == first
    assert not schema_errors(many.results)


def test_the_report_leads_with_the_first_violation_and_lists_every_key(many: Made) -> None:
    report = many.run_dir / "report.html"
    text = page_text(report)
    source = report.read_text()
    bad = sorted(many.invalid(), key=lambda k: k.first_bad_index or 0)
    earliest = bad[0]
    assert earliest.counterexample is not None
    op = earliest.counterexample.op
    lead = text.index(f"The first violation in time: key {json.dumps(earliest.key)}, process "
                      f"{op.process}: {op.description} (index {op.invoked}).")
    assert text.index(squash(earliest.counterexample.explanation), lead) < \
        text.index("Every key that is not linearizable")
    assert f"first violation: {squash(earliest.counterexample.explanation)}" in text
    # the table: every invalid key, earliest first, a link for those drawn
    table = source[source.index('<table class="invalid-keys">'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == len(bad) + 1
    positions = [table.index(f"<td class=\"num\">{k.first_bad_index}</td>") for k in bad]
    assert positions == sorted(positions)
    assert table.count('>chart</a>') == MAX_DRAWN
    assert source.count('class="counterexample"') == MAX_DRAWN
    assert source.count('id="chart-counterexample-') == MAX_DRAWN
    assert f"({len(bad) - MAX_COUNTEREXAMPLES} full counterexamples were left out of it)" \
        in text


def test_results_json_lists_only_files_that_exist(made: dict[str, Made], tmp_path: Path) -> None:
    import shutil

    from harness.check import recheck
    from harness.report import build_report

    run_dir = tmp_path / "kv" / "again"
    shutil.copytree(made["kv"].run_dir, run_dir)
    (run_dir / "report.html").unlink()
    written = recheck(run_dir)
    assert "report" not in written["files"], written["files"]
    assert all((run_dir / rel).exists() for rel in written["files"].values())
    build_report(run_dir)
    files = json.loads((run_dir / "results.json").read_text())["files"]
    assert files["report"] == "report.html" and (run_dir / "report.html").is_file()
    # written by RunResults as the runner writes it: no harness.log or nodes/ here
    assert "harness_log" not in files and "node_logs" not in files


def test_only_the_earliest_violations_are_explained(many: Made) -> None:
    """check_file(max_explained=N): a counterexample for the N invalid keys whose culprit
    came first, a summary naming the same culprit for the others; the same verdicts."""
    from checker.check import check_file

    full = many.result
    assert full is not None
    cheap = check_file(str(many.run_dir / "history.jsonl"), "kv", fmt="jsonl",
                       max_explained=5).result
    assert [(k.key, k.valid) for k in cheap.keys] == [(k.key, k.valid) for k in full.keys]
    explained = [k for k in cheap.keys if k.counterexample is not None]
    assert len(explained) == 5
    culprits = {k.key: k.first_bad_index for k in full.keys if k.valid is False}
    assert {k.key: k.first_bad_index for k in cheap.keys if k.valid is False} == culprits
    earliest = sorted(culprits, key=lambda key: culprits[key])[:5]
    assert sorted(k.key for k in explained) == sorted(earliest)
    assert all(k.summary is not None for k in cheap.keys
               if k.valid is False and k.counterexample is None)


def test_a_results_json_from_before_the_bound_still_renders(many: Made, tmp_path: Path) -> None:
    """results.json as 7906c58 wrote it: a full counterexample for every invalid key, no
    summary. The report draws the first MAX_DRAWN and lists them all."""
    import shutil

    from harness.report import build_report

    run_dir = tmp_path / "old" / "run"
    shutil.copytree(many.run_dir, run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    assert many.result is not None
    old = many.result.to_json()
    del old["counterexamples_omitted"]
    for k in old["keys"]:
        del k["summary"]
    results["checkers"]["linearizable"] = old
    (run_dir / "results.json").write_text(json.dumps(results))
    source = build_report(run_dir).read_text()
    assert source.count('class="counterexample"') == MAX_DRAWN
    table = source[source.index('<table class="invalid-keys">'):]
    assert table[:table.index("</table>")].count("<tr>") == len(many.invalid()) + 1
