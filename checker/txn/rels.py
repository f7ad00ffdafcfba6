"""The relations that order transactions, and the evidence for one edge."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Any


class Rel(IntFlag):
    WW = 1  # write-write: a version and the next one of a key
    WR = 2  # write-read: a read saw the write
    RW = 4  # read-write (anti-dependency): a read did not see the next version
    PROCESS = 8  # the same process ran one, then the other
    REALTIME = 16  # one completed before the other began

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {Rel.WW: "ww", Rel.WR: "wr", Rel.RW: "rw", Rel.PROCESS: "process",
           Rel.REALTIME: "realtime"}
BY_LABEL = {label: rel for rel, label in _LABELS.items()}
DATA_RELS = Rel.WW | Rel.WR | Rel.RW


@dataclass(frozen=True, slots=True)
class Why:
    """The evidence for one edge `source -> target`.

    ww: `source` wrote `before` and `target` wrote `value`, the next version of `key`.
    wr: `target` read `value` of `key`, which `source` wrote.
    rw: `source` read `before` of `key` (None: the initial state) and `target` wrote
    `value`, the version after it. process / realtime: nothing more is needed.
    """

    rel: Rel
    key: Any = None
    value: Any = None
    before: Any = None
    unread: bool = False  # list-append: no read saw `value`, so it follows every read


@dataclass(frozen=True, slots=True)
class Edge:
    source: int
    target: int
    why: Why
