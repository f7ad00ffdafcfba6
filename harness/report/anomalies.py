"""The transactional anomalies in the report: each cycle drawn as a graph whose edges
are labelled with what orders the two transactions, and the history lines of every
transaction an anomaly names."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from checker.txn.rels import DATA_RELS, Rel
from checker.txn.result import Anomaly, Step
from harness.report.figures import esc

MAX_DRAWN = 20  # anomalies drawn and listed with their history lines
MAX_LINE = 400  # characters of a history line shown
EDGE_COLORS = {Rel.WW: "#1f77b4", Rel.WR: "#2ca02c", Rel.RW: "#d62728",
               Rel.PROCESS: "#9467bd", Rel.REALTIME: "#ff7f0e"}


@dataclass
class ShownTxn:
    name: str  # T1, T2, ...
    summary: str  # outcome, process, micro-operations
    lines: list[tuple[int, str]]  # (line number, the line of history.jsonl)


@dataclass
class ShownAnomaly:
    anomaly: Anomaly
    anchor: str
    chart: str | None  # the chart's id, for cycles
    txns: list[ShownTxn]


def edge_label(step: Step) -> str:
    why = step.why
    if why.rel & DATA_RELS:
        value = list(why.value) if isinstance(why.value, tuple) else why.value
        return f"{why.rel.label} key {esc(why.key, 20)}: {esc(value, 24)}"
    return why.rel.label


def cycle_figure(anomaly: Anomaly) -> go.Figure:
    """The cycle's transactions on a circle, T1 at the top and the cycle clockwise, an
    arrow per edge in its relation's colour with its label at the middle. The two edges
    of a 2-cycle (its two transactions side by side) bend apart so both labels show."""
    n = len(anomaly.txns)
    if n == 2:  # side by side: one edge arcs above, the other below
        xy = [(-1.0, 0.0), (1.0, 0.0)]
    else:
        angle = [math.pi / 2 - 2 * math.pi * i / n for i in range(n)]
        xy = [(math.cos(a), math.sin(a)) for a in angle]
    fig = go.Figure()
    notes: list[dict[str, Any]] = []
    for step in anomaly.steps:
        (x0, y0), (x1, y1) = xy[step.source], xy[step.target]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy) or 1.0
        nx, ny = dy / length, -dx / length  # the right of the edge's direction
        bend = 0.55 if n == 2 else 0.0
        mx, my = (x0 + x1) / 2 + nx * bend, (y0 + y1) / 2 + ny * bend
        shrink = 0.14 / length  # stop short of the nodes' markers
        color = EDGE_COLORS.get(step.rel, "#444")
        halves = (((x0 + dx * shrink + nx * bend / 2, y0 + dy * shrink + ny * bend / 2),
                   (mx, my), 0),
                  ((mx, my), (x1 - dx * shrink + nx * bend / 2,
                              y1 - dy * shrink + ny * bend / 2), 3))
        for (ax, ay), (hx, hy), head in halves:  # the head only at the target's end
            notes.append({"x": hx, "y": hy, "ax": ax, "ay": ay, "xref": "x", "yref": "y",
                          "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": head,
                          "arrowsize": 1.2, "arrowwidth": 2, "arrowcolor": color, "text": ""})
        notes.append({"x": mx, "y": my, "text": edge_label(step), "showarrow": False,
                      "font": {"size": 12, "color": color}, "bgcolor": "rgba(255,255,255,0.85)",
                      "hovertext": esc(step.text, 300)})
    fig.add_trace(go.Scatter(
        x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers+text",
        text=[f"<b>T{i + 1}</b>" for i in range(n)], textposition="middle center",
        marker={"size": 38, "color": "#f5f5f5", "line": {"color": "#333", "width": 2}},
        hovertext=[esc(t.describe(), 300) for t in anomaly.txns], hoverinfo="text",
        showlegend=False,
    ))
    for rel in sorted({s.rel for s in anomaly.steps}):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=rel.label,
                                 line={"color": EDGE_COLORS.get(rel, "#444"), "width": 3}))
    axis = {"visible": False, "range": [-1.5, 1.5], "fixedrange": True}
    fig.update_layout(
        title={"text": f"{esc(anomaly.name)}: T1 → … → T1, each edge a reason one "
               "transaction precedes the next", "font": {"size": 14}},
        height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis=axis, yaxis={**axis, "scaleanchor": "x"}, annotations=notes,
        legend={"orientation": "h", "y": 0, "x": 1, "xanchor": "right"},
        plot_bgcolor="white",
    )
    return fig


def history_lines(path: Path | None, wanted: Iterable[int]) -> dict[int, str]:
    """The history's lines with these numbers (1-based), in one streaming pass."""
    want = set(wanted)
    found: dict[int, str] = {}
    if path is None or not want or not path.is_file():
        return found
    last = max(want)
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, 1):
            if number in want:
                text = line.rstrip("\n")
                found[number] = text if len(text) <= MAX_LINE else text[:MAX_LINE - 1] + "…"
            if number >= last:
                break
    return found


def shown(anomalies: list[Anomaly], history: Path | None) -> list[ShownAnomaly]:
    """The first MAX_DRAWN anomalies with their transactions' history lines."""
    chosen = anomalies[:MAX_DRAWN]
    numbers = {n for a in chosen for t in a.txns for n in (t.line, t.completed_line)
               if n is not None}
    lines = history_lines(history, numbers)
    out = []
    for i, a in enumerate(chosen):
        txns = [ShownTxn(f"T{j + 1}", t.describe(),
                         [(n, lines[n]) for n in (t.line, t.completed_line)
                          if n is not None and n in lines])
                for j, t in enumerate(a.txns)]
        out.append(ShownAnomaly(a, f"anomaly-{i + 1}", f"cycle-{i + 1}" if a.is_cycle else None,
                                txns))
    return out
