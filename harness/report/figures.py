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
No operation is ever dropped from a chart.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from checker.history import NEMESIS, UNOBSERVED, Op

COLORS = {"ok": "#3a9d23", "fail": "#d62728", "info": "#ff9f1c"}
CULPRIT = "#7b0000"
FAULT_FILL = "rgba(214, 39, 40, 0.12)"
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
    import json

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


def client_ops(ops: Sequence[Op], concurrency: int | None) -> ClientOps:
    """Each invocation with the completion by its process that follows it (an `info`
    completion included, so its latency is real); one never completed ends with the
    history."""
    end_of_history = max(((op.time or 0) / 1e9 for op in ops), default=0.0)
    pairs: list[tuple[Op, Op | None]] = []
    open_: dict[Any, int] = {}
    for op in ops:
        if op.process == NEMESIS:
            continue
        if op.type == "invoke":
            open_[op.process] = len(pairs)
            pairs.append((op, None))
        elif op.process in open_:
            at = open_.pop(op.process)
            pairs[at] = (pairs[at][0], op)
    rows, results, values, completed, starts, ends = [], [], [], [], [], []
    for inv, done in pairs:
        p = inv.process
        row = p % concurrency if isinstance(p, int) and concurrency else p
        rows.append(row if isinstance(row, int) else -2)
        results.append(done.type if done is not None else "info")
        shown = done.value if done is not None and done.value is not UNOBSERVED else inv.value
        values.append(shown)
        completed.append(done is not None)
        starts.append((inv.time or 0) / 1e9)
        ends.append((done.time or 0) / 1e9 if done is not None else end_of_history)
    return ClientOps(
        process=[inv.process for inv, _ in pairs],
        row=np.asarray(rows, dtype=np.int32),
        f=[inv.f for inv, _ in pairs], key=[inv.key for inv, _ in pairs], value=values,
        result=results,
        index=np.asarray([inv.index for inv, _ in pairs], dtype=np.int64),
        start=np.asarray(starts, dtype=np.float64),
        end=np.asarray(ends, dtype=np.float64),
        completed=np.asarray(completed, dtype=bool),
    )


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


def _shade(fig: go.Figure, faults: list[dict[str, Any]], label: bool, end: float) -> None:
    for w in faults:
        extra: dict[str, Any] = {}
        if label:
            extra = {"annotation_text": w["label"], "annotation_position": "top left",
                     "annotation_font_size": 10}
        fig.add_vrect(x0=w["start"], x1=w["end"], fillcolor=FAULT_FILL, line_width=0,
                      layer="below", **extra)
    fig.update_xaxes(range=[0, end * 1.01 or 1])


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


def timeline(ops: ClientOps, faults: list[dict[str, Any]], nemesis: list[dict[str, Any]],
             culprits: set[int]) -> go.Figure:
    """Jepsen's timeline: one row per worker, each operation a bar from its invocation to
    its completion, coloured by outcome; fault windows shaded across it."""
    fig = go.Figure()
    gl = len(ops) > WEBGL_ABOVE
    scatter = go.Scattergl if gl else go.Scatter
    mid = (ops.start + ops.end) / 2
    half = (ops.end - ops.start) / 2
    result = np.asarray(ops.result)
    f = np.asarray(ops.f)
    for outcome in ("ok", "fail", "info"):
        for name in sorted(set(f[result == outcome])):
            which = np.flatnonzero((result == outcome) & (f == name))
            latency = (ops.end[which] - ops.start[which]) * 1000
            custom = np.stack([ops.index[which].astype(np.float64), latency], axis=1)
            text = _hover_text(ops, which)
            fig.add_trace(scatter(
                x=mid[which].astype(np.float32), y=ops.row[which].astype(np.int16),
                mode="markers", name=f"{esc(name)} {outcome}",
                legendgroup=outcome,
                marker={"color": COLORS[outcome], "size": 4 if gl else 6, "symbol": "line-ns-open"
                        if not gl else "circle"},
                error_x={"type": "data", "array": half[which].astype(np.float32),
                         "color": COLORS[outcome], "thickness": 3 if not gl else 2, "width": 0},
                customdata=custom.astype(np.float32),
                text=text,
                hovertemplate=(
                    f"<b>{esc(name)}</b> {outcome}<br>op index %{{customdata[0]}}<br>"
                    "worker %{y}<br>invoked %{x:.3f} s (midpoint)<br>"
                    "latency %{customdata[1]:.1f} ms" + ("<br>%{text}" if text else "")
                    + "<extra></extra>"
                ),
            ))
    if culprits:
        which = np.flatnonzero(np.isin(ops.index, list(culprits)))
        fig.add_trace(go.Scatter(
            x=mid[which], y=ops.row[which], mode="markers", name="cannot be linearized",
            marker={"color": CULPRIT, "size": 14, "symbol": "x"},
            text=[f"key {esc(ops.key[i], 40)} · {esc(ops.f[i])} {esc(ops.value[i])}"
                  for i in which],
            customdata=ops.index[which],
            hovertemplate="<b>cannot be linearized</b><br>op index %{customdata}<br>%{text}"
                          "<extra></extra>",
        ))
    if nemesis:
        fig.add_trace(go.Scatter(
            x=[n["time_s"] for n in nemesis], y=[-1] * len(nemesis), mode="markers",
            name="nemesis", marker={"color": "#444", "size": 9, "symbol": "diamond"},
            text=[f"{esc(n['f'])} {esc(n.get('value'), 120)}" for n in nemesis],
            hovertemplate="<b>nemesis</b> %{x:.3f} s<br>%{text}<extra></extra>",
        ))
    _shade(fig, faults, label=True, end=float(ops.end.max(initial=0)))
    rows = sorted({int(r) for r in ops.row.tolist()} | ({-1} if nemesis else set()))
    _layout(fig, "Operations by worker over time", max(320, 30 + 22 * len(rows)),
            xaxis={"title": "seconds since the workload began", "rangeslider": {"visible":
                                                                              False}},
            yaxis={"title": "worker", "autorange": "reversed", "tickvals": rows,
                   "ticktext": ["nemesis" if r == -1 else str(r) for r in rows]})
    return fig


def latency(ops: ClientOps, faults: list[dict[str, Any]]) -> go.Figure:
    """Jepsen's latency-raw: each operation at its invocation, its latency up, coloured
    by outcome; fault windows shaded."""
    fig = go.Figure()
    gl = len(ops) > WEBGL_ABOVE
    scatter = go.Scattergl if gl else go.Scatter
    result = np.asarray(ops.result)
    f = np.asarray(ops.f)
    for outcome in ("ok", "fail", "info"):
        for name in sorted(set(f[result == outcome])):
            which = np.flatnonzero((result == outcome) & (f == name))
            ms = np.maximum((ops.end[which] - ops.start[which]) * 1000, 0.001)
            fig.add_trace(scatter(
                x=ops.start[which].astype(np.float32), y=ms.astype(np.float32),
                mode="markers", name=f"{esc(name)} {outcome}",
                marker={"color": COLORS[outcome], "size": 3 if gl else 5, "opacity": 0.6,
                        "symbol": ["circle", "square", "triangle-up"][
                            sorted(set(ops.f)).index(name) % 3]},
                customdata=ops.index[which].astype(np.float64).astype(np.float32)
                if len(which) < 2**24 else None,
                hovertemplate=f"<b>{esc(name)}</b> {outcome}<br>op index %{{customdata}}<br>"
                              "invoked %{x:.3f} s<br>%{y:.1f} ms<extra></extra>",
            ))
    _shade(fig, faults, label=False, end=float(ops.end.max(initial=0)))
    _layout(fig, "Latency (each operation, at its invocation)", 380,
            xaxis={"title": "seconds since the workload began"},
            yaxis={"title": "latency (ms)", "type": "log"})
    return fig


def throughput(ops: ClientOps, faults: list[dict[str, Any]], duration: float) -> go.Figure:
    """Jepsen's rate graph: completions per second by outcome, in bins."""
    fig = go.Figure()
    width = max(0.1, round(max(duration, 1.0) / 150, 1))
    edges = np.arange(0.0, max(duration, width) + width, width)
    result = np.asarray(ops.result)
    for outcome in ("ok", "fail", "info"):
        ends = ops.end[result == outcome]
        if not len(ends):
            continue
        counts, _ = np.histogram(ends, bins=edges)
        fig.add_trace(go.Scatter(
            x=(edges[:-1] + width / 2).round(3), y=(counts / width).round(1), mode="lines",
            name=outcome, line={"color": COLORS[outcome], "width": 2, "shape": "hv"},
            hovertemplate=f"{outcome}: %{{y}} ops/s at %{{x:.1f}} s<extra></extra>",
        ))
    _shade(fig, faults, label=False, end=float(ops.end.max(initial=0)))
    _layout(fig, f"Throughput (completions per second, {width:g} s bins)", 300,
            xaxis={"title": "seconds since the workload began"},
            yaxis={"title": "operations / s", "rangemode": "tozero"})
    return fig


def counterexample(ce: dict[str, Any], times: dict[int, float], key: Any) -> go.Figure:
    """A counterexample's operations on a time axis, one row per process, the one that
    cannot be linearized highlighted."""
    culprit = ce["op"]["invoke_index"]
    chosen: dict[int, dict[str, Any]] = {}
    for o in [*ce["window"]["ops"], *ce.get("concurrent", []), ce["op"]]:
        chosen[o["invoke_index"]] = o
    ops = sorted(chosen.values(), key=lambda o: o["invoke_index"])
    t0 = min((times.get(o["invoke_index"], 0.0) for o in ops), default=0.0)
    last = max((times.get(o.get("complete_index") or o["invoke_index"], 0.0) for o in ops),
               default=t0)
    span = max(last - t0, 1e-6)
    processes = sorted({str(o["process"]) for o in ops}, key=_natural)
    fig = go.Figure()
    for o in ops:
        start = (times.get(o["invoke_index"], t0) - t0) * 1000
        done = o.get("complete_index")
        end = (times.get(done, last) - t0) * 1000 if done is not None else (span * 1000 * 1.05)
        is_culprit = o["invoke_index"] == culprit
        color = CULPRIT if is_culprit else COLORS.get(o.get("result", "info"), "#888")
        y = str(o["process"])
        label = esc(o["description"], 60)
        fig.add_trace(go.Scatter(
            x=[start, end], y=[y, y], mode="lines+markers",
            line={"color": color, "width": 10 if is_culprit else 6,
                  "dash": "dot" if done is None else "solid"},
            marker={"size": 4, "color": color}, showlegend=False,
            hovertemplate=(
                f"<b>{label}</b>{' — cannot be linearized' if is_culprit else ''}<br>"
                f"process {esc(o['process'])}, {esc(o.get('result', '?'))}<br>"
                f"indexes {o['invoke_index']}..{done if done is not None else '(never)'}<br>"
                "%{x:.2f} ms<extra></extra>"
            ),
        ))
        fig.add_annotation(x=(start + end) / 2, y=y, text=("<b>⚠ " + label + "</b>")
                           if is_culprit else label, showarrow=False, yshift=13,
                           font={"size": 11, "color": CULPRIT if is_culprit else "#222"})
    _layout(fig, f"Key {esc(key, 60)}: the operations of the smallest failing window",
            max(220, 70 + 46 * len(processes)),
            xaxis={"title": "milliseconds from the window's first invocation"},
            yaxis={"title": "process", "type": "category", "categoryorder": "array",
                   "categoryarray": processes, "autorange": "reversed"})
    return fig


def _natural(text: str) -> tuple[int, Any]:
    return (0, int(text)) if text.lstrip("-").isdigit() else (1, text)


def to_json(fig: go.Figure) -> str:
    """The figure's JSON for a <script>. plotly escapes <, > and / in strings already;
    `<` is escaped again here so that nothing can close the script whatever plotly does
    (in JSON, `<` can only occur inside a string)."""
    return pio.to_json(fig, validate=False, engine="json").replace("<", "\\u003c")
