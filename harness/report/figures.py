"""The report's charts, as plotly figures (JSON for Plotly.newPlot).

Every string that came from the system under test or the history (keys, values,
descriptions) is HTML-escaped before it goes into hover text or a label: plotly reads a
subset of HTML in text and shows entities as characters, so an escaped
`<script>alert(1)</script>` is shown as typed. The JSON itself escapes `<`, `>` and `/`
(plotly.io.to_json), so no string can close the <script> element it sits in.

Large histories: the timeline and latency charts switch to WebGL (Scattergl) above
`WEBGL_ABOVE` operations, carry their numbers as typed arrays (base64 in the JSON), and
put values in the hover text only up to `DETAIL_LIMIT` operations (above it the hover
names the op's index, process, f, outcome and latency; history.jsonl has the rest).

Long histories: `collect` reads the history once, as a stream. Up to `THIN_ABOVE`
client operations it draws every one; past that it draws those near each fault's start
and end and each culprit, and a stride sample of the rest, and says so (`Thinning`);
throughput and per-bin latency (`Series`) count every operation (docs/reports.md).
"""

from __future__ import annotations

import bisect
import html
import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from checker.explain import Counterexample, DescribedOp
from checker.history import NEMESIS, UNOBSERVED, Op
from checker.quantiles import Quantiles

COLORS = {"ok": "#3a9d23", "fail": "#d62728", "info": "#ff9f1c"}
CULPRIT = "#7b0000"
FAULT_FILL = "rgba(214, 39, 40, 0.16)"
WEBGL_ABOVE = 2_000
DETAIL_LIMIT = 20_000
MAX_TEXT = 80


def esc(value: Any, limit: int = MAX_TEXT) -> str:
    """A value as short, escaped text for a plotly label."""
    text = value if isinstance(value, str) else _json_text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # plotly shows &lt; &gt; &amp; as characters (not &quot;): quotes stay as they are
    return html.escape(text, quote=False)


def _json_text(value: Any) -> str:
    if value is UNOBSERVED:
        return "?"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@dataclass
class ClientOps:
    """The client operations of a history as columns (one entry per operation)."""

    process: list[int | str]
    row: np.ndarray  # the timeline row: the worker slot
    f: list[str]
    key: list[Any]
    value: list[Any]
    result: list[str]
    index: np.ndarray  # the invocation's index
    start: np.ndarray  # seconds
    end: np.ndarray  # seconds; the end of the history when it never completed
    completed: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.f)


THIN_ABOVE = 50_000  # a history with more client operations than this is thinned
DETAIL_BUDGET = 10_000  # operations drawn around the faults and violations, about
SAMPLE_BUDGET = 10_000  # operations drawn from the rest, at most
MAX_WINDOW_S = 5.0  # full detail at most this far from a fault or a violation
MIN_WINDOW_S = 0.001
MAX_BINS = 300  # throughput and latency bins; past it the bins get twice as wide


@dataclass
class Thinning:
    """What a thinned overview leaves out: it draws `drawn` of the `total` client
    operations: every one within `window_s` seconds of a fault's start or end or of an
    operation that cannot be linearized (the `focus` points), up to `detail_cap` of them,
    and one in `one_in` of the others."""

    total: int
    drawn: int
    window_s: float
    focus: int
    one_in: int
    detail_capped: bool

    def sentence(self) -> str:
        near = (f"every operation within {self.window_s:g} s of each fault's start and end "
                "and of each operation that cannot be linearized")
        if self.detail_capped:
            near += f" (the first {DETAIL_BUDGET * 2:,} of them)"
        return (f"Showing {self.drawn:,} of {self.total:,} operations: {near}, and one in "
                f"{self.one_in:,} of the others. Throughput counts all {self.total:,}, and the "
                "latency chart's lines are each bin's median, 99th percentile and maximum "
                "over all of them.")


@dataclass
class Series:
    """The whole history, binned by time: completions per bin by outcome, and the
    latencies (ms) of the completed operations invoked in each bin."""

    width: float
    counts: dict[str, list[int]]
    latency: list[Quantiles]

    def _bin(self, at: float) -> int:
        b = max(0, int(at / self.width))
        while b >= MAX_BINS:
            self._coarsen()
            b = max(0, int(at / self.width))
        return b

    def _coarsen(self) -> None:
        self.width *= 2
        for outcome, counts in self.counts.items():
            self.counts[outcome] = [sum(counts[i:i + 2]) for i in range(0, len(counts), 2)]
        merged: list[Quantiles] = []
        for i in range(0, len(self.latency), 2):
            q = self.latency[i]
            for other in self.latency[i + 1:i + 2]:
                q.merge(other)
            merged.append(q)
        self.latency = merged

    def completed(self, outcome: str, at: float) -> None:
        b = self._bin(at)
        counts = self.counts.setdefault(outcome, [])
        if len(counts) <= b:
            counts.extend([0] * (b + 1 - len(counts)))
        counts[b] += 1

    def latency_at(self, invoked: float, ms: float) -> None:
        b = self._bin(invoked)
        while len(self.latency) <= b:
            self.latency.append(Quantiles(exact_limit=64))
        self.latency[b].add(ms)


def bin_width(duration: float) -> float:
    return max(0.1, round(max(duration, 1.0) / 150, 1))


@dataclass(slots=True)
class _Record:
    index: int
    process: int | str
    f: str
    key: Any
    value: Any
    result: str
    start: float
    end: float | None  # None: never completed
    seq: int = -1  # among the operations not near a focus point


class _Collector:
    """The client operations of a streamed history, in memory bounded by THIN_ABOVE,
    the budgets and what is in flight: all of them while there are at most
    `thin_above`; past that, those near a focus point and a sample of the others,
    kept one in `one_in` (doubled whenever the sample outgrows its budget)."""

    def __init__(self, focus_s: Sequence[float], culprits: set[int], window_s: float,
                 thin_above: int | None, width: float, wanted: set[int]) -> None:
        self.focus = sorted(focus_s)
        self.culprits = culprits
        self.window = window_s
        self.thin_above = thin_above
        self.series = Series(width, {}, [])
        self.wanted = wanted
        self.times: dict[int, float] = {}
        self.total = 0
        self.all: list[_Record] | None = []
        self.detail: dict[int, _Record] = {}
        self.detail_capped = False
        self.sample: list[_Record] = []
        self.one_in = 1
        self.others = 0
        self.recent: deque[_Record] = deque()
        self.open: dict[Any, _Record] = {}
        self.last = 0.0

    def feed(self, ops: Iterable[Op]) -> None:
        for op in ops:
            at = (op.time or 0) / 1e9
            self.last = max(self.last, at)
            if op.index in self.wanted:
                self.times[op.index] = at
            if op.process == NEMESIS:
                continue
            if op.type == "invoke":
                self.open[op.process] = _Record(op.index, op.process, op.f, op.key, op.value,
                                                "info", at, None)
                if op.index in self.culprits:
                    self._violation(at)
                continue
            record = self.open.pop(op.process, None)
            if record is None:
                continue
            record.result = op.type
            record.end = at
            if op.value is not UNOBSERVED:
                record.value = op.value
            self.series.latency_at(record.start, (at - record.start) * 1000)
            self._done(record, at)

    def _violation(self, at: float) -> None:
        """A culprit is invoked at `at`: what completed within the window before it is
        promoted to detail, and what follows is checked against it."""
        bisect.insort(self.focus, at)
        for record in self.recent:
            if record.end is not None and record.end >= at - self.window:
                self._keep_detail(record)

    def _near(self, start: float, end: float) -> bool:
        i = bisect.bisect_left(self.focus, start - self.window)
        return i < len(self.focus) and self.focus[i] <= end + self.window

    def _keep_detail(self, record: _Record) -> None:
        if record.index in self.detail:
            return
        if len(self.detail) >= 2 * DETAIL_BUDGET and record.index not in self.culprits:
            self.detail_capped = True
            return
        self.detail[record.index] = record

    def _done(self, record: _Record, at: float) -> None:
        self.total += 1
        self.series.completed(record.result, at)
        if self.all is not None:
            self.all.append(record)
            if self.thin_above is not None and len(self.all) > self.thin_above:
                everything, self.all = self.all, None
                for r in everything:
                    self._select(r)
            return
        self._select(record)

    def _select(self, record: _Record) -> None:
        end = record.end if record.end is not None else self.last
        if record.index in self.culprits or self._near(record.start, end):
            self._keep_detail(record)
        else:
            record.seq = self.others
            self.others += 1
            if record.seq % self.one_in == 0:
                self.sample.append(record)
                if len(self.sample) > SAMPLE_BUDGET:
                    self.one_in *= 2
                    self.sample = [r for r in self.sample if r.seq % self.one_in == 0]
        if record.end is not None:
            self.recent.append(record)
            while self.recent and (self.recent[0].end or 0) < end - self.window:
                self.recent.popleft()

    def finish(self, concurrency: int | None) -> tuple[ClientOps, Thinning | None]:
        for record in self.open.values():  # never completed: they end with the history
            self.total += 1
            self.series.completed("info", self.last)
            if self.all is not None:
                self.all.append(record)
            else:
                self._select(record)
        self.open = {}
        if self.all is not None:
            return _columns(sorted(self.all, key=lambda r: r.index), concurrency,
                            self.last), None
        chosen = dict(self.detail)
        for r in self.sample:
            chosen.setdefault(r.index, r)
        records = sorted(chosen.values(), key=lambda r: r.index)
        return _columns(records, concurrency, self.last), Thinning(
            self.total, len(records), self.window, len(self.focus), self.one_in,
            self.detail_capped)


def _columns(records: list[_Record], concurrency: int | None, last: float) -> ClientOps:
    rows = []
    for r in records:
        p = r.process
        row = p % concurrency if isinstance(p, int) and concurrency else p
        rows.append(row if isinstance(row, int) else -2)
    return ClientOps(
        process=[r.process for r in records],
        row=np.asarray(rows, dtype=np.int32),
        f=[r.f for r in records], key=[r.key for r in records],
        value=[r.value for r in records], result=[r.result for r in records],
        index=np.asarray([r.index for r in records], dtype=np.int64),
        start=np.asarray([r.start for r in records], dtype=np.float64),
        end=np.asarray([r.end if r.end is not None else last for r in records],
                       dtype=np.float64),
        completed=np.asarray([r.end is not None for r in records], dtype=bool),
    )


@dataclass
class Collected:
    """What the report draws of a history: the client operations drawn, how they were
    thinned (None: all of them), the whole history binned, and the times of the
    operations the counterexamples name."""

    ops: ClientOps
    thinning: Thinning | None
    series: Series
    times: dict[int, float]
    end_s: float


def collect(ops: Iterable[Op], concurrency: int | None, focus_s: Sequence[float] = (),
            culprits: set[int] | None = None, window_s: float = MAX_WINDOW_S,
            thin_above: int | None = THIN_ABOVE, width: float = 0.1,
            wanted: set[int] | None = None) -> Collected:
    """One pass over a history (a list or a stream from history.jsonl)."""
    collector = _Collector(focus_s, culprits or set(), window_s, thin_above, width,
                           wanted or set())
    collector.feed(ops)
    drawn, thinning = collector.finish(concurrency)
    return Collected(drawn, thinning, collector.series, collector.times, collector.last)


def window_for(total: int, duration: float, focus: int) -> float:
    """How far from each focus point every operation is drawn, so that about
    DETAIL_BUDGET operations are (at the history's mean rate)."""
    if not total or not duration or not focus:
        return MAX_WINDOW_S
    rate = total / duration
    window = min(MAX_WINDOW_S, max(MIN_WINDOW_S, DETAIL_BUDGET / (2 * rate * focus)))
    return float(f"{window:.2g}")


def client_ops(ops: Sequence[Op], concurrency: int | None) -> ClientOps:
    """Each invocation with the completion by its process that follows it (an `info`
    completion included, so its latency is real); one never completed ends with the
    history. Every operation, none thinned."""
    return collect(ops, concurrency, thin_above=None).ops


def fault_windows(stats: dict[str, Any] | None, duration: float) -> list[dict[str, Any]]:
    out = []
    for fault in (stats or {}).get("faults", []):
        end = fault.get("end_s")
        out.append({
            "start": fault["start_s"], "end": end if end is not None else duration,
            "label": esc(f"{fault['f']} {_targets(fault.get('value'))}", 60),
        })  # fmt: skip
    return out


def _targets(value: Any) -> str:
    """What a fault hit, in a few words: `leader: n3`."""
    if isinstance(value, dict) and "nodes" in value:
        nodes = ", ".join(map(str, value.get("nodes") or [])) or "no node"
        return f"{value['target']}: {nodes}" if "target" in value else nodes
    return _json_text(value)


def _layout(fig: go.Figure, title: str, height: int, **axes: Any) -> None:
    fig.update_layout(
        template="simple_white", title={"text": title, "x": 0, "font": {"size": 15}},
        height=height, margin={"l": 60, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.15}, hovermode="closest", **axes,
    )


def _hover_text(ops: ClientOps, which: np.ndarray) -> list[str] | None:
    if len(ops) > DETAIL_LIMIT:
        return None
    return [
        f"key {esc(ops.key[i], 40)} · {esc(ops.value[i])}" if ops.key[i] is not None
        else esc(ops.value[i])
        for i in which
    ]


def overview(ops: ClientOps, faults: list[dict[str, Any]], nemesis: list[dict[str, Any]],
             culprits: set[int], duration: float, series: Series | None = None,
             thinned: bool = False) -> go.Figure:
    """Three charts on one time axis (zooming one zooms all), with the fault windows
    shaded across them:

    1. Jepsen's timeline: one row per worker, each operation a bar from its invocation
       to its completion, coloured by outcome; the nemesis' operations on a row of their
       own; the operations that cannot be linearized marked;
    2. Jepsen's latency-raw: each operation at its invocation, its latency up (log);
    3. Jepsen's rate graph: completions per second by outcome.

    `ops` are the operations drawn; `series` the whole history binned (by default, from
    `ops`). When `ops` were thinned, the latency chart also draws each bin's median, 99th
    percentile and maximum over the whole history.
    One figure, so a large history needs one WebGL context, not three."""
    rows = sorted({int(r) for r in ops.row.tolist()} | ({-1} if nemesis else set()))
    heights = [max(160, 40 + 20 * len(rows)), 300, 180]
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
        row_heights=[h / sum(heights) for h in heights],
        subplot_titles=["Operations by worker (bar: invocation to completion)",
                        "Latency of each operation, at its invocation",
                        "Throughput: completions per second"],
    )
    _timeline(fig, ops, nemesis, culprits)
    if series is None:
        series = series_of(ops, duration)
    _latency(fig, ops)
    if thinned:
        _latency_lines(fig, series)
    width = _throughput(fig, series)
    end = max(duration, float(ops.end.max(initial=0.0))) * 1.01 or 1.0
    for w in faults:
        fig.add_vrect(x0=w["start"], x1=w["end"], fillcolor=FAULT_FILL, line_width=0,
                      layer="below", row="all", col=1)
        fig.add_annotation(x=w["start"], y=1.0, xref="x", yref="y domain", text=w["label"],
                           showarrow=False, xanchor="left", yanchor="top",
                           font={"size": 10, "color": "#8b1a1a"})
    fig.update_layout(
        template="simple_white", height=sum(heights) + 170, hovermode="closest",
        margin={"l": 70, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.06, "x": 0},
    )
    fig.update_xaxes(range=[0, end], showticklabels=True)
    fig.update_xaxes(title="seconds since the workload began", row=3, col=1)
    fig.update_yaxes(title="worker", autorange="reversed", tickvals=rows,
                     ticktext=["nemesis" if r == -1 else str(r) for r in rows], row=1, col=1)
    fig.update_yaxes(title="latency (ms)", type="log", row=2, col=1)
    fig.update_yaxes(title=f"ops/s ({width:g} s bins)", rangemode="tozero", row=3, col=1)
    return fig


def _groups(ops: ClientOps) -> list[tuple[str, str, np.ndarray]]:
    result = np.asarray(ops.result)
    f = np.asarray(ops.f)
    return [(outcome, name, np.flatnonzero((result == outcome) & (f == name)))
            for outcome in ("ok", "fail", "info") for name in sorted(set(f[result == outcome]))]


def _timeline(fig: go.Figure, ops: ClientOps, nemesis: list[dict[str, Any]],
              culprits: set[int]) -> None:
    gl = len(ops) > WEBGL_ABOVE
    scatter = go.Scattergl if gl else go.Scatter
    mid = (ops.start + ops.end) / 2
    half = (ops.end - ops.start) / 2
    row_type = np.int8 if int(ops.row.max(initial=0)) < 127 else np.int32
    for outcome, name, which in _groups(ops):
        text = _hover_text(ops, which)
        fig.add_trace(scatter(
            x=mid[which].astype(np.float32), y=ops.row[which].astype(row_type),
            mode="markers", name=f"{esc(name)} {outcome}", legendgroup=f"{name} {outcome}",
            marker={"color": COLORS[outcome], "size": 3 if gl else 6,
                    "symbol": "circle" if gl else "line-ns-open"},
            error_x={"type": "data", "array": half[which].astype(np.float32),
                     "color": COLORS[outcome], "thickness": 2 if gl else 3, "width": 0},
            customdata=ops.index[which].astype(np.int32), text=text,
            hovertemplate=(
                f"<b>{esc(name)}</b> {outcome}<br>op index %{{customdata}}<br>"
                "worker %{y}, midpoint %{x:.3f} s" + ("<br>%{text}" if text else "")
                + "<extra></extra>"
            ),
        ), row=1, col=1)
    if culprits:
        which = np.flatnonzero(np.isin(ops.index, list(culprits)))
        fig.add_trace(go.Scatter(
            x=mid[which], y=ops.row[which], mode="markers", name="cannot be linearized",
            marker={"color": CULPRIT, "size": 13, "symbol": "x"},
            text=[f"key {esc(ops.key[i], 40)} · {esc(ops.f[i])} {esc(ops.value[i])}"
                  for i in which],
            customdata=ops.index[which],
            hovertemplate="<b>cannot be linearized</b><br>op index %{customdata}<br>%{text}"
                          "<extra></extra>",
        ), row=1, col=1)
    if nemesis:
        fig.add_trace(go.Scatter(
            x=[n["time_s"] for n in nemesis], y=[-1] * len(nemesis), mode="markers",
            name="nemesis", marker={"color": "#444", "size": 9, "symbol": "diamond"},
            text=[f"{esc(n['f'])} {esc(n.get('value'), 120)}" for n in nemesis],
            hovertemplate="<b>nemesis</b> %{x:.3f} s<br>%{text}<extra></extra>",
        ), row=1, col=1)


def _latency(fig: go.Figure, ops: ClientOps) -> None:
    gl = len(ops) > WEBGL_ABOVE
    scatter = go.Scattergl if gl else go.Scatter
    fs = sorted(set(ops.f))
    for outcome, name, which in _groups(ops):
        ms = np.maximum((ops.end[which] - ops.start[which]) * 1000, 0.001)
        fig.add_trace(scatter(
            x=ops.start[which].astype(np.float32), y=ms.astype(np.float32), mode="markers",
            name=f"{esc(name)} {outcome}", legendgroup=f"{name} {outcome}", showlegend=False,
            marker={"color": COLORS[outcome], "size": 3 if gl else 5,
                    "symbol": ["circle", "square", "triangle-up"][fs.index(name) % 3]},
            customdata=ops.index[which].astype(np.int32),
            hovertemplate=f"<b>{esc(name)}</b> {outcome}<br>op index %{{customdata}}<br>"
                          "invoked %{x:.3f} s<br>%{y:.1f} ms<extra></extra>",
        ), row=2, col=1)


def series_of(ops: ClientOps, duration: float) -> Series:
    """The binned series of operations already in memory."""
    series = Series(bin_width(duration), {}, [])
    for i in range(len(ops)):
        series.completed(ops.result[i], float(ops.end[i]))
        if ops.completed[i]:
            series.latency_at(float(ops.start[i]), float(ops.end[i] - ops.start[i]) * 1000)
    return series


def _throughput(fig: go.Figure, series: Series) -> float:
    width = series.width
    bins = max((len(c) for c in series.counts.values()), default=0)
    for outcome in ("ok", "fail", "info"):
        counts = series.counts.get(outcome)
        if not counts:
            continue
        counts = counts + [0] * (bins - len(counts))
        x = (np.arange(bins) * width + width / 2).round(3)
        fig.add_trace(go.Scatter(
            x=x, y=(np.asarray(counts) / width).round(1), mode="lines",
            name=f"{outcome} per second", legendgroup=f"rate {outcome}",
            line={"color": COLORS[outcome], "width": 2, "shape": "hv"},
            hovertemplate=f"{outcome}: %{{y}} ops/s at %{{x:.1f}} s<extra></extra>",
        ), row=3, col=1)
    return width


def _latency_lines(fig: go.Figure, series: Series) -> None:
    """Each bin's median, 99th percentile and maximum latency, over every operation."""
    width = series.width
    filled = [(i, q) for i, q in enumerate(series.latency) if q.count]
    x = [round(i * width + width / 2, 3) for i, _ in filled]
    for name, color, value in (
        ("max", "#444", lambda q: q.high),
        ("p99", "#8c564b", lambda q: q.value(0.99)),
        ("p50", "#1f77b4", lambda q: q.value(0.5)),
    ):
        fig.add_trace(go.Scatter(
            x=x, y=[round(max(value(q), 0.001), 3) for _, q in filled], mode="lines",
            name=f"latency {name} (all operations)", legendgroup=f"latency {name}",
            line={"color": color, "width": 1.5, "shape": "hvh",
                  "dash": "dot" if name == "max" else "solid"},
            hovertemplate=f"{name}: %{{y:.1f}} ms, invoked in the bin at %{{x:.1f}} s"
                          "<extra></extra>",
        ), row=2, col=1)


LABELLED = 40  # a counterexample chart labels at most this many operations
DRAW_ALL = 60  # a window up to this size is drawn whole; a larger one, around the culprit
NEAREST = 20  # of a large window: the operations nearest the culprit, by index


def drawn_ops(ce: Counterexample) -> tuple[list[DescribedOp], int]:
    """The operations a counterexample's chart draws, and how many there are in all.

    All of them when the window has at most DRAW_ALL operations; otherwise the culprit,
    the operations concurrent with it, the proof's operations, the last ten steps of the
    longest partial linearization, and the NEAREST window operations closest to the
    culprit. (The report's table lists the whole window.)"""
    culprit = ce.op
    every = {o.invoked: o for o in [*ce.window.ops, *ce.concurrent, culprit]}
    if len(every) <= DRAW_ALL:
        return sorted(every.values(), key=lambda o: o.invoked), len(every)
    chosen = {o.invoked: o for o in [*ce.concurrent, culprit]}
    if ce.proof is not None:
        chosen.update((o.invoked, o) for o in ce.proof.ops())
    for path in ce.partial_linearizations[:1]:
        chosen.update((step.op.invoked, step.op) for step in path.steps[-10:])
    nearest = sorted(ce.window.ops, key=lambda o: abs(o.invoked - culprit.invoked))
    chosen.update((o.invoked, o) for o in nearest[:NEAREST])
    return sorted(chosen.values(), key=lambda o: o.invoked), len(every)


def counterexample(ce: Counterexample, times: dict[int, float], key: Any) -> go.Figure:
    """A counterexample's operations (its window, the operations concurrent with the
    culprit, and the culprit) on a time axis, one row per process, the one that cannot
    be linearized highlighted. Every operation is drawn; labels go to the culprit and
    those concurrent with it first. When the window is much longer than the culprit's
    neighbourhood, the chart opens zoomed to that (autoscale shows everything)."""
    culprit = ce.op.invoked
    ops, _ = drawn_ops(ce)
    t0 = min((times.get(o.invoked, 0.0) for o in ops), default=0.0)
    last = max((times.get(o.completed if o.completed is not None else o.invoked, 0.0)
                for o in ops), default=t0)
    open_end = (last - t0) * 1000 * 1.05 + 0.001
    processes = sorted({str(o.process) for o in ops}, key=_natural)
    row = {p: i for i, p in enumerate(processes)}
    before = [o.invoked for o in ops if o.invoked < culprit][-5:]
    near = {o.invoked for o in ce.concurrent} | {culprit, *before}
    # the culprit always; then those nearest it
    labelled = set(sorted(near, key=lambda i: abs(i - culprit))[:LABELLED])
    for o in ops:
        if len(labelled) >= LABELLED:
            break
        labelled.add(o.invoked)
    fig = go.Figure()
    segments: dict[str, dict[str, list[Any]]] = {}
    span = [float("inf"), float("-inf")]
    labels: list[dict[str, Any]] = []  # set at once: plotly checks them all on each add
    for o in ops:
        start = (times.get(o.invoked, t0) - t0) * 1000
        done = o.completed
        end = (times.get(done, last) - t0) * 1000 if done is not None else open_end
        is_culprit = o.invoked == culprit
        group = "culprit" if is_culprit else o.result or "info"
        seg = segments.setdefault(group, {"x": [], "y": [], "text": []})
        y = row[str(o.process)]
        label = esc(o.description, 60)
        hover = (f"<b>{label}</b>{' — cannot be linearized' if is_culprit else ''}<br>"
                 f"process {esc(o.process)}, {esc(o.result or '?')}<br>indexes "
                 f"{o.invoked}..{done if done is not None else '(never completed)'}")
        seg["x"] += [start, end, None]
        seg["y"] += [y, y, None]
        seg["text"] += [hover, hover, ""]
        if o.invoked in near:
            span = [min(span[0], start), max(span[1], end)]
        if o.invoked in labelled:
            labels.append({"x": (start + end) / 2, "y": y, "showarrow": False, "yshift": 11,
                           "text": ("<b>⚠ " + label + "</b>") if is_culprit else label,
                           "font": {"size": 11, "color": CULPRIT if is_culprit else "#222"}})
    names = {"ok": "ok", "fail": "failed", "info": "unknown (info)",
             "culprit": "cannot be linearized"}
    for group, seg in sorted(segments.items(), key=lambda g: g[0] == "culprit"):
        color = CULPRIT if group == "culprit" else COLORS.get(group, "#888")
        fig.add_trace(go.Scatter(
            x=seg["x"], y=seg["y"], text=seg["text"], mode="lines+markers",
            name=names.get(group, group),
            line={"color": color, "width": 9 if group == "culprit" else 5},
            marker={"size": 4, "color": color}, connectgaps=False,
            hovertemplate="%{text}<br>%{x:.2f} ms<extra></extra>",
        ))
    whole = open_end
    xaxis: dict[str, Any] = {"title": "milliseconds from the window's first invocation"}
    if span[1] > span[0] and (span[1] - span[0]) < whole / 20:
        pad = (span[1] - span[0]) * 0.6 + 0.001
        xaxis["range"] = [span[0] - pad, span[1] + pad]
        xaxis["title"] += " (zoomed to the culprit; autoscale shows the whole window)"
    _layout(fig, f"Key {esc(key, 60)}: the operations of the smallest failing window",
            min(1600, max(220, 90 + (40 if len(processes) <= 20 else 22) * len(processes))),
            xaxis=xaxis,
            yaxis={"title": "process", "autorange": "reversed", "tickvals": list(row.values()),
                   "ticktext": [esc(p, 20) for p in processes], "zeroline": False})
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1,
                              "xanchor": "right"}, margin={"t": 60}, annotations=labels)
    return fig


def _natural(text: str) -> tuple[int, Any]:
    return (0, int(text)) if text.lstrip("-").isdigit() else (1, text)


def to_json(fig: go.Figure) -> str:
    """The figure's JSON for a <script>. plotly escapes <, > and / in strings already;
    `<` is escaped again here so that nothing can close the script whatever plotly does
    (in JSON, `<` can only occur inside a string)."""
    return pio.to_json(fig, validate=False, engine="json").replace("<", "\\u003c")
