"""Typed results of the transactional checker, and their JSON (docs/txn.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.txn.history import Txn
from checker.txn.rels import BY_LABEL, DATA_RELS, Rel, Why
from checker.verdict import Verdict

__all__ = ["Anomaly", "GraphStats", "Step", "TxnResult", "Verdict"]


@dataclass(frozen=True)
class Step:
    """One edge of a cycle: `source` precedes `target` by `rel`, for the reason `text`."""

    source: int  # positions in Anomaly.txns
    target: int
    why: Why
    text: str

    @property
    def rel(self) -> Rel:
        return self.why.rel

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.source, "to": self.target,
                               "rel": self.why.rel.label, "explanation": self.text}
        if self.why.rel & DATA_RELS:
            out["key"] = self.why.key
            out["value"] = _plain(self.why.value)
            if self.why.rel != Rel.WR:
                out["before"] = _plain(self.why.before)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        why = Why(BY_LABEL[data["rel"]], data.get("key"), data.get("value"),
                  data.get("before"))
        return cls(data["from"], data["to"], why, data["explanation"])


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Anomaly:
    """One witness of an anomaly: the transactions involved (named T1, T2, … in this
    order), the explanation in sentences, and for a cycle its edges."""

    name: str
    txns: tuple[Txn, ...]
    explanation: tuple[str, ...]
    steps: tuple[Step, ...] = ()
    key: Any = None

    @property
    def is_cycle(self) -> bool:
        return bool(self.steps)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "txns": [{"name": f"T{i + 1}", **t.to_json()} for i, t in enumerate(self.txns)],
            "explanation": list(self.explanation),
        }
        if self.key is not None:
            out["key"] = self.key
        if self.steps:
            out["cycle"] = [s.to_json() for s in self.steps]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Anomaly:
        return cls(
            name=data["name"],
            txns=tuple(Txn.from_json(t, i) for i, t in enumerate(data["txns"])),
            explanation=tuple(data["explanation"]),
            steps=tuple(Step.from_json(s) for s in data.get("cycle") or ()),
            key=data.get("key"),
        )


@dataclass(frozen=True)
class GraphStats:
    nodes: int = 0
    edges: int = 0
    cyclic_components: int = 0  # strongly connected components of two or more
    largest_component: int = 0

    def to_json(self) -> dict[str, int]:
        return {"nodes": self.nodes, "edges": self.edges,
                "cyclic_components": self.cyclic_components,
                "largest_component": self.largest_component}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphStats:
        return cls(**{k: int(data.get(k, 0)) for k in
                      ("nodes", "edges", "cyclic_components", "largest_component")})


@dataclass
class TxnResult:
    """The verdict on one history for the requested consistency models."""

    workload: str
    models: tuple[str, ...]
    verdict: Verdict
    txns: int
    anomalies: list[Anomaly]
    counts: dict[str, int]  # anomaly name -> witnesses found (more than are kept)
    not_models: tuple[str, ...] = ()
    also_not: tuple[str, ...] = ()
    strongest_satisfied: tuple[str, ...] = ()
    incomplete: str | None = None  # why the cycle search may have missed anomalies
    seconds: float = 0.0
    graph: GraphStats = field(default_factory=GraphStats)

    @property
    def anomaly_types(self) -> list[str]:
        return sorted(self.counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "consistency_models": list(self.models),
            "valid": self.verdict.to_json(),
            "verdict": self.verdict.value,
            "txns": self.txns,
            "anomaly_types": self.anomaly_types,
            "anomaly_counts": dict(sorted(self.counts.items())),
            "not": list(self.not_models),
            "also_not": list(self.also_not),
            "strongest_satisfied": list(self.strongest_satisfied),
            "incomplete": self.incomplete,
            "seconds": round(self.seconds, 6),
            "graph": self.graph.to_json(),
            "anomalies": [a.to_json() for a in self.anomalies],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TxnResult:
        """The result `to_json` wrote (results.json's `txn` checker, `check --json`)."""
        return cls(
            workload=data["workload"],
            models=tuple(data.get("consistency_models") or ()),
            verdict=Verdict.of(data.get("verdict", data.get("valid"))),
            txns=int(data.get("txns", 0)),
            anomalies=[Anomaly.from_json(a) for a in data.get("anomalies") or []],
            counts=dict(data.get("anomaly_counts") or {}),
            not_models=tuple(data.get("not") or ()),
            also_not=tuple(data.get("also_not") or ()),
            strongest_satisfied=tuple(data.get("strongest_satisfied") or ()),
            incomplete=data.get("incomplete"),
            seconds=float(data.get("seconds") or 0.0),
            graph=GraphStats.from_json(data.get("graph") or {}),
        )
