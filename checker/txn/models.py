"""Consistency models as the sets of anomalies each one forbids (docs/txn.md).

After Elle (Kingsbury & Alvaro) and the sources it cites (Adya; Adya, Liskov &
O'Neil; Cerone et al.; Daudjee & Salem; Bailis et al.): anomalies imply weaker
ones (a G0 cycle is also a G1c cycle; a cycle without process or realtime edges is
also a trivial -process and -realtime cycle), models imply weaker models, and each
model forbids a few anomalies directly and, through the implications, every
anomaly that implies one of those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# anomaly -> anomalies it implies
IMPLIES: Final[dict[str, tuple[str, ...]]] = {
    "G0": ("G1c", "G0-process"),
    "G0-process": ("G1c-process", "G0-realtime"),
    "G0-realtime": ("G1c-realtime",),
    "G1a": ("G1",),
    "G1b": ("G1",),
    "G1c": ("G1", "G1c-process"),
    "G1c-process": ("G1c-realtime", "G1-process"),
    "G1c-realtime": ("G1-realtime",),
    "G1": ("G1-process",),
    "G1-process": ("G1-realtime",),
    # Our cycles are over items (keys), never predicates: a G-single cycle is
    # also a G-nonadjacent one, and every cycle with rw edges is G2-item.
    "G-single": ("G-nonadjacent", "G-single-process"),
    "G-single-process": ("G-nonadjacent-process", "G-single-realtime"),
    "G-single-realtime": ("G-nonadjacent-realtime",),
    "G-nonadjacent": ("G2-item", "G-nonadjacent-process"),
    "G-nonadjacent-process": ("G2-item-process", "G-nonadjacent-realtime"),
    "G-nonadjacent-realtime": ("G2-item-realtime",),
    "G2-item": ("G2", "G2-item-process"),
    "G2-item-process": ("G2-process", "G2-item-realtime"),
    "G2-item-realtime": ("G2-realtime",),
    "G2": ("G2-process",),
    "G2-process": ("G2-realtime",),
    "incompatible-order": ("G1a",),
    "dirty-update": ("G1a",),
    "garbage-read": ("G1a",),
    "future-read": ("G1c",),
    "lost-update": ("G2-item",),
}

# model -> models it implies (a history that satisfies the first satisfies these)
MODEL_IMPLIES: Final[dict[str, tuple[str, ...]]] = {
    "strict-serializable": ("serializable", "strong-session-serializable",
                            "strong-snapshot-isolation"),
    "strong-session-serializable": ("serializable", "strong-session-snapshot-isolation"),
    "strong-snapshot-isolation": ("strong-session-snapshot-isolation",
                                  "strong-read-committed"),
    "strong-session-snapshot-isolation": ("snapshot-isolation",
                                          "strong-session-read-committed"),
    "serializable": ("repeatable-read", "snapshot-isolation"),
    "snapshot-isolation": ("read-committed",),
    "repeatable-read": ("read-committed",),
    # Elle's generalisations of PL-1 and PL-2 to process and realtime order
    "strong-read-committed": ("strong-session-read-committed", "strong-read-uncommitted"),
    "strong-session-read-committed": ("read-committed", "strong-session-read-uncommitted"),
    "strong-read-uncommitted": ("strong-session-read-uncommitted",),
    "strong-session-read-uncommitted": ("read-uncommitted",),
    "read-committed": ("read-uncommitted",),
    "read-uncommitted": (),
}
MODELS: Final = tuple(MODEL_IMPLIES)
DEFAULT_MODELS: Final = ("strict-serializable",)  # as Jepsen's etcd append test

# model -> the anomalies it forbids beyond those its weaker models forbid
FORBIDS: Final[dict[str, tuple[str, ...]]] = {
    "read-uncommitted": ("G0", "duplicate-elements"),
    "read-committed": ("G1",),
    "repeatable-read": ("G1", "G2-item", "lost-update"),
    "snapshot-isolation": ("internal", "G1", "G-nonadjacent", "lost-update"),
    "serializable": ("internal", "G1", "G2"),
    "strong-session-snapshot-isolation": ("internal", "G1-process", "G-nonadjacent-process"),
    "strong-snapshot-isolation": ("internal", "G1-realtime", "G-nonadjacent-realtime"),
    "strong-session-serializable": ("G1-process", "G2-process"),
    "strict-serializable": ("G1", "G1c-realtime", "G2-realtime"),
    "strong-read-committed": ("G1c-realtime",),
    "strong-session-read-committed": ("G1c-process",),
    "strong-read-uncommitted": ("G0-realtime",),
    "strong-session-read-uncommitted": ("G0-process",),
}


def _closure(start: Iterable[str], edges: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        x = todo.pop()
        if x not in seen:
            seen.add(x)
            todo.extend(edges.get(x, ()))
    return seen


def _reverse(edges: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for a, bs in edges.items():
        for b in bs:
            out.setdefault(b, []).append(a)
    return {k: tuple(v) for k, v in out.items()}


_IMPLIED_BY = _reverse(IMPLIES)
_MODEL_IMPLIED_BY = _reverse(MODEL_IMPLIES)


def implied_anomalies(found: Iterable[str]) -> set[str]:
    """The anomalies present given those found (them included)."""
    return _closure(found, IMPLIES)


def forbidden_by(models: Iterable[str]) -> set[str]:
    """Every anomaly that must be absent for all of `models` to hold."""
    direct = {a for m in _closure(models, MODEL_IMPLIES) for a in FORBIDS.get(m, ())}
    return _closure(direct, _IMPLIED_BY)


def unknown_models(models: Iterable[str]) -> list[str]:
    return [m for m in models if m not in MODEL_IMPLIES]


@dataclass(frozen=True)
class Boundary:
    """Where a history sits among the models: the weakest it violates (`not_`),
    the stronger ones it also violates (`also_not`), the strongest it satisfies."""

    not_: tuple[str, ...]
    also_not: tuple[str, ...]
    strongest_satisfied: tuple[str, ...]


def boundary(found: Iterable[str]) -> Boundary:
    present = implied_anomalies(found)
    direct = {m for m, forbids in FORBIDS.items() if present.intersection(forbids)}
    impossible = _closure(direct, _MODEL_IMPLIED_BY)
    weakest = {m for m in impossible
               if not (_closure(MODEL_IMPLIES[m], MODEL_IMPLIES) - {m}) & impossible}
    possible = set(MODELS) - impossible
    strongest = {m for m in possible
                 if not (_closure(_MODEL_IMPLIED_BY.get(m, ()), _MODEL_IMPLIED_BY) - {m})
                 & possible}

    def ordered(ms: set[str]) -> tuple[str, ...]:
        return tuple(m for m in MODELS if m in ms)

    return Boundary(ordered(weakest), ordered(impossible - weakest), ordered(strongest))
