"""Build a run's report.html from its results.json and history.jsonl.

The page is one file that opens from disk with no network: plotly's script is inlined,
the charts are plotly figures (WebGL for large histories), the rest is a jinja2
template with autoescaping, so every value that came from the system under test is
shown as text.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from checker.explain import Counterexample, Summary
from checker.history import Op
from checker.linearizable import KeyResult
from checker.verdict import Verdict
from harness.recorder import stream_history
from harness.report import anomalies, figures
from harness.report.checked import MAX_DRAWN, Checked
from harness.results import record_file

REPORT = "report.html"
MAX_LISTED = 50  # elements of a set-full list shown before "and N more"
EAGER_COUNTEREXAMPLES = 5  # drawn at load; the others as they are scrolled near


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = _show
    env.filters["verdict"] = verdict_word
    return env


def _show(value: Any, limit: int = 200) -> str:
    """Any JSON value as short text (escaped later by the template)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                          default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verdict_word(valid: Any) -> str:
    """results.json's `valid` (or a Verdict) as the page's word and css class."""
    return Verdict.of(valid).value


def headline(results: dict[str, Any], checked: Checked) -> tuple[str, str, list[str]]:
    """The verdict in plain words: (css class, one sentence, the reasons), the first
    violation in time first."""
    valid = Verdict.of(results.get("valid"))
    stats = results.get("stats") or {}
    ops = sum(sum(c.values()) for c in (stats.get("ops") or {}).values())
    faults = len(stats.get("faults") or [])
    reasons: list[str] = []
    invalid = checked.invalid_keys()
    if invalid:
        brief = invalid[0].brief()
        reasons.append(f"first violation: {brief.explanation}" if brief is not None
                       else f"key {_show(invalid[0].key)} is not linearizable")
        if len(invalid) > 1:
            reasons.append(f"{len(invalid) - 1} more key{'s' if len(invalid) > 2 else ''} "
                           "not linearizable: the table below lists every one")
    for k in checked.unknown_keys()[:MAX_LISTED]:
        reasons.append(f"key {_show(k.key)}: the checker could not decide "
                       f"({k.reason or 'a budget ran out'})")
    sf = checked.set_full
    if sf is not None and sf.valid is False:
        reasons.append(f"set-full: {sf.lost} lost, {sf.stale} stale and "
                       f"{sf.unexpected} unexpected elements")
    txn = checked.txn
    if txn is not None and txn.verdict is not Verdict.VALID:
        counts = ", ".join(f"{n} ×{c}" for n, c in sorted(txn.counts.items()))
        if counts:
            reasons.append(f"transactional anomalies: {counts}"
                           + (f"; not {', '.join(txn.not_models)}" if txn.not_models else ""))
        if txn.anomalies:
            first = txn.anomalies[0]
            reasons.append(f"{first.name}: {' '.join(first.explanation[:3])}")
        if txn.incomplete:
            reasons.append(f"transactions: {txn.incomplete}")
    for name, why in checked.unknown_because.items():
        reasons.append(f"{name}: {why}")
    if results.get("error"):
        reasons.append(f"the run stopped with an error: {results['error']}")
    if results.get("interrupted"):
        reasons.append("the run was interrupted before the end")
    if valid is Verdict.VALID:
        sentence = (f"Valid: no consistency violation found in {ops} operations"
                    f" with {faults} fault{'s' if faults != 1 else ''} injected.")
        return valid.value, sentence, reasons
    if valid is Verdict.INVALID:
        what = []
        lin = checked.linearizable
        if lin is not None and invalid:
            count = len(lin.keys) + lin.unlisted_valid
            what.append(f"{len(invalid)} of {count} key{'s' if count != 1 else ''}"
                        " not linearizable")
        if sf is not None and sf.valid is False:
            what.append("set elements lost or stale")
        if txn is not None and txn.verdict is Verdict.INVALID:
            what.append(f"transactions not {', '.join(txn.not_models or txn.models)}")
        return (valid.value, f"{valid.word}: the system broke its consistency claim "
                f"({'; '.join(what) or 'a checker failed'}).", reasons)
    return (valid.value, "Unknown: this run cannot say whether the system is consistent.",
            reasons or ["a checker ran out of time or memory"])


@dataclass
class Drawn:
    """An invalid key whose counterexample the page draws in full."""

    result: KeyResult
    ce: Counterexample
    anchor: str  # the section's id
    chart: str  # the chart's id
    shown: int  # operations drawn
    total: int  # operations of the window, the culprit and those concurrent with it


@dataclass
class Row:
    """An invalid key in the table of them all."""

    result: KeyResult
    brief: Summary | None
    anchor: str | None  # its drawn section, when it has one


def build_report(run_dir: Path, ops: Iterable[Op] | None = None) -> Path:
    """Write run_dir/report.html from run_dir/results.json and the history (read
    streaming: memory bounded by what the page draws, not by the history's length)."""
    run_dir = Path(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    history = run_dir / "history.jsonl"
    if ops is None:
        ops = stream_history(history) if history.exists() else []
    html = render(results, ops, run_dir)
    out = run_dir / REPORT
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    record_file(run_dir, "report", REPORT)
    return out


def render(results: dict[str, Any], ops: Iterable[Op], run_dir: Path | None = None) -> str:
    started = time.monotonic()
    spec = results.get("spec") or {}
    stats = results.get("stats") or {}
    checked = Checked.from_json(results.get("checkers") or {})
    invalid = checked.invalid_keys()
    culprits = {k.first_bad_index for k in invalid if k.first_bad_index is not None}
    to_draw = checked.drawn()
    collected = _collect(ops, spec, stats, culprits, to_draw)
    client, times = collected.ops, collected.times
    duration = float(stats.get("duration_s") or collected.end_s)
    faults = figures.fault_windows(stats, duration)
    charts: dict[str, str] = {}
    if len(client):
        charts["overview"] = figures.to_json(figures.overview(
            client, faults, stats.get("nemesis") or [], culprits, duration, collected.series,
            thinned=collected.thinning is not None))
    drawn = []
    for n, k in enumerate(to_draw):
        assert k.counterexample is not None
        chart = f"counterexample-{n}"
        charts[chart] = figures.to_json(figures.counterexample(k.counterexample, times, k.key))
        shown, total = figures.drawn_ops(k.counterexample)
        drawn.append(Drawn(k, k.counterexample, f"key-{n + 1}", chart, len(shown), total))
    txn_shown = [] if checked.txn is None else anomalies.shown(
        checked.txn.anomalies, None if run_dir is None else run_dir / "history.jsonl")
    for item in txn_shown:
        if item.chart is not None:
            charts[item.chart] = figures.to_json(anomalies.cycle_figure(item.anomaly))
    anchors = {id(d.result): d.anchor for d in drawn}
    rows = [Row(k, k.brief(), anchors.get(id(k))) for k in invalid]
    css, sentence, reasons = headline(results, checked)
    files = _files(results, run_dir)
    page = environment().get_template("report.html.j2").render(
        r=results, spec=spec, stats=stats, verdicts=checked.verdicts, css=css,
        sentence=sentence, reasons=reasons, charts=charts, counterexamples=drawn, rows=rows,
        first=rows[0] if rows else None, max_drawn=MAX_DRAWN,
        omitted=checked.linearizable.counterexamples_omitted if checked.linearizable else 0,
        unknown_keys=checked.unknown_keys(), set_full=checked.set_full, files=files,
        txn=checked.txn, txn_anomalies=txn_shown, txn_max=anomalies.MAX_DRAWN,
        ops_count=collected.thinning.total if collected.thinning else len(client),
        thinning=collected.thinning.sentence() if collected.thinning else None,
        detail=len(client) <= figures.DETAIL_LIMIT,
        detail_limit=figures.DETAIL_LIMIT, max_listed=MAX_LISTED,
        eager_counterexamples=EAGER_COUNTEREXAMPLES, plotly_js=Markup(get_plotlyjs()),
        charts_json=Markup("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in charts.items())
                           + "}"),
        built=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        build_seconds=round(time.monotonic() - started, 2),
    )
    return page


def _collect(ops: Iterable[Op], spec: dict[str, Any], stats: dict[str, Any],
             culprits: set[int], drawn: list[KeyResult]) -> figures.Collected:
    """One pass over the history: the operations to draw (thinned past
    figures.THIN_ABOVE, with full detail around each fault's start and end and each
    culprit), the binned series, and the times of the counterexamples' operations."""
    focus = [t for f in stats.get("faults") or [] for t in (f.get("start_s"), f.get("end_s"))
             if t is not None]
    total = sum(sum(c.values()) for c in (stats.get("ops") or {}).values())
    duration = float(stats.get("duration_s") or 0.0)
    return figures.collect(
        ops, spec.get("concurrency"), focus, culprits,
        window_s=figures.window_for(total, duration, len(focus) + len(culprits)),
        thin_above=figures.THIN_ABOVE, width=figures.bin_width(duration),
        wanted=_wanted(drawn))


def _wanted(drawn: list[KeyResult]) -> set[int]:
    """The history indexes whose times the counterexample charts need."""
    found: set[int] = set()
    for k in drawn:
        assert k.counterexample is not None
        for o in figures.drawn_ops(k.counterexample)[0]:
            found.add(o.invoked)
            if o.completed is not None:
                found.add(o.completed)
    return found


def _files(results: dict[str, Any], run_dir: Path | None) -> list[dict[str, str]]:
    """Links to the run's other files, relative to the report."""
    names = {"results": "results.json", "spec": "spec.yaml", "history": "history.jsonl",
             "harness_log": "harness.log"}
    out = []
    for key, name in names.items():
        path = (results.get("files") or {}).get(key, name)
        if run_dir is None or (run_dir / path).exists():
            out.append({"name": path, "href": path})
    if run_dir is not None and (run_dir / "nodes").is_dir():
        for log in sorted((run_dir / "nodes").iterdir()):
            out.append({"name": f"nodes/{log.name}", "href": f"nodes/{log.name}"})
    return out
