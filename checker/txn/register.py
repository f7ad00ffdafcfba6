"""The rw-register analysis (docs/txn.md, "rw-register").

Every key holds one value; transactions read and blindly write values unique per
key, so each read names the transaction whose write it saw (wr edges, always).
The version order of a key is known only in part: the initial state (nil) comes
before every write, and a transaction that read a version and then wrote the key
installed its write after that version. ww and rw edges follow from those
inferred version edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from checker.history import HistoryError
from checker.txn.append import anomaly
from checker.txn.explain import show
from checker.txn.history import WRITE, Txn, ext_reads, final_writes
from checker.txn.rels import Edge, Rel, Why
from checker.txn.result import Anomaly


class RwRegister:
    """The rw-register history's inferred version orders, anomalies and data edges."""

    workload = "wr"

    def __init__(self, txns: list[Txn], source: str | None = None):
        self.txns = txns
        self.writer: dict[tuple[Any, Any], int] = {}
        self.failed: dict[tuple[Any, Any], int] = {}
        for t in txns:
            for m in t.ops:
                if m.f != WRITE:
                    continue
                kv = (m.key, m.value)
                other = self.writer.get(kv, self.failed.get(kv))
                if other is not None and other != t.id:
                    raise HistoryError(
                        f"value {show(m.value)} written to key {show(m.key)} twice (also by "
                        f"the transaction at {txns[other].where()}); rw-register needs "
                        "unique values per key", source, t.line)
                (self.failed if t.outcome == "fail" else self.writer)[kv] = t.id
        # key -> version -> the versions known to follow it directly (None: initial),
        # as dicts used as ordered sets, so that the output does not depend on hashing
        self.next: dict[Any, dict[Any, dict[Any, None]]] = defaultdict(
            lambda: defaultdict(dict))
        has_pred: set[tuple[Any, Any]] = set()
        versions: dict[Any, dict[Any, None]] = defaultdict(dict)
        for t in txns:
            if t.outcome == "fail":
                continue
            finals = final_writes(t)
            for k, v in finals.items():
                versions[k][v] = None
            if t.outcome != "ok":
                continue
            for m in ext_reads(t):
                if m.key in finals and m.value is not None and m.value != finals[m.key]:
                    self.next[m.key][m.value][finals[m.key]] = None
                    has_pred.add((m.key, finals[m.key]))
        for k, vs in versions.items():
            for v in vs:
                if (k, v) not in has_pred:
                    self.next[k][None][v] = None

    def nodes(self) -> set[int]:
        """Every `ok` transaction, and `info` ones whose writes some read saw."""
        out = {t.id for t in self.txns if t.outcome == "ok"}
        for t in self.txns:
            if t.outcome != "ok":
                continue
            for m in ext_reads(t):
                if m.value is not None:
                    w = self.writer.get((m.key, m.value))
                    if w is not None:
                        out.add(w)
        return out

    def anomalies(self) -> list[Anomaly]:
        found: list[Anomaly] = []
        txns = self.txns
        by_version: dict[tuple[Any, Any], list[int]] = defaultdict(list)
        for t in txns:
            if t.outcome != "ok":
                continue
            found.extend(self._internal(t))
            written = final_writes(t)
            for m in ext_reads(t):
                key, value = m.key, m.value
                if key in written:
                    by_version[(key, value)].append(t.id)
                if value is None:
                    continue
                kv = (key, value)
                if kv in self.failed:
                    found.append(anomaly(
                        "G1a", (t, txns[self.failed[kv]]),
                        f"T1 read key {show(key)} = {show(value)}, written by T2, which "
                        "failed (aborted read)", key))
                elif kv not in self.writer:
                    found.append(anomaly(
                        "garbage-read", (t,),
                        f"T1 read key {show(key)} = {show(value)}, which no transaction "
                        "wrote", key))
                elif self.writer[kv] == t.id:
                    found.append(anomaly(
                        "future-read", (t,),
                        f"T1 read key {show(key)} = {show(value)}, a value T1 itself writes "
                        "only later", key))
                else:
                    w = txns[self.writer[kv]]
                    last = final_writes(w)[key]
                    if last != value:
                        found.append(anomaly(
                            "G1b", (t, w),
                            f"T1 read key {show(key)} = {show(value)}, but T2 wrote "
                            f"{show(value)} and later {show(last)} to key {show(key)}: T1 "
                            "saw T2's intermediate state", key))
        for (key, value), ids in by_version.items():
            if len(ids) > 1:
                both = tuple(txns[i] for i in ids)
                names = " and ".join(f"T{i + 1}" for i in range(len(both)))
                found.append(anomaly(
                    "lost-update", both,
                    f"{names} each read key {show(key)} = {show(value)} and each wrote it: "
                    "whichever committed second should have seen the first's write", key))
        return found

    def _internal(self, t: Txn) -> Iterator[Anomaly]:
        known: dict[Any, Any] = {}
        for m in t.ops:
            if not m.is_read:
                known[m.key] = m.value
                continue
            if m.key in known and known[m.key] != m.value:
                yield anomaly(
                    "internal", (t,),
                    f"T1 read key {show(m.key)} = {show(m.value)}, but its own earlier "
                    f"operations imply {show(known[m.key])}", m.key)
            known[m.key] = m.value

    def edges(self) -> Iterator[Edge]:
        writer = self.writer
        for key, succ in self.next.items():
            for before, afters in succ.items():
                if before is None:
                    continue
                a = writer.get((key, before))
                for after in afters:
                    b = writer.get((key, after))
                    if a is not None and b is not None and a != b:
                        yield Edge(a, b, Why(Rel.WW, key, after, before))
        for t in self.txns:
            if t.outcome != "ok":
                continue
            for m in ext_reads(t):
                if m.value is not None:
                    w = writer.get((m.key, m.value))
                    if w is not None and w != t.id:
                        yield Edge(w, t.id, Why(Rel.WR, m.key, m.value))
                for after in self.next.get(m.key, {}).get(m.value, ()):
                    w = writer.get((m.key, after))
                    if w is not None and w != t.id:
                        yield Edge(t.id, w, Why(Rel.RW, m.key, after, m.value))
