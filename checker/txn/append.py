"""The list-append analysis (docs/txn.md, "list-append").

Every key holds a list; transactions append unique elements and read whole lists.
A read is a prefix of the key's one true list, so the longest read gives the
version order of every element any read saw, and with it the ww, wr and rw edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from checker.history import HistoryError
from checker.txn.explain import name_txns, show
from checker.txn.history import APPEND, Txn, ext_reads
from checker.txn.rels import Edge, Rel, Why
from checker.txn.result import Anomaly


def anomaly(name: str, txns: tuple[Txn, ...], text: str, key: Any = None) -> Anomaly:
    return Anomaly(name=name, txns=txns, explanation=(text, *name_txns(txns)), key=key)


class ListAppend:
    """The list-append history's version orders, anomalies and data edges."""

    workload = "append"

    def __init__(self, txns: list[Txn], source: str | None = None):
        self.txns = txns
        self.writer: dict[tuple[Any, Any], int] = {}  # (key, element) -> ok or info txn
        self.failed: dict[tuple[Any, Any], int] = {}  # (key, element) -> failed txn
        for t in txns:
            for m in t.ops:
                if m.f != APPEND:
                    continue
                kv = (m.key, m.value)
                other = self.writer.get(kv, self.failed.get(kv))
                if other is not None:
                    raise HistoryError(
                        f"element {show(m.value)} appended to key {show(m.key)} twice (also "
                        f"by the transaction at {txns[other].where()}); list-append needs "
                        "unique elements per key", source, t.line)
                (self.failed if t.outcome == "fail" else self.writer)[kv] = t.id
        self.order: dict[Any, tuple[Any, ...]] = {}  # key -> the longest read
        self.order_reader: dict[Any, int] = {}
        for t in txns:
            if t.outcome != "ok":
                continue
            for m in t.ops:
                if m.is_read:
                    seen = m.value or ()
                    if len(seen) > len(self.order.get(m.key, ())):
                        self.order[m.key] = seen
                        self.order_reader[m.key] = t.id

        # Elements of committed transactions (`ok`, or `info` with an element some
        # read saw) that no read saw: the true list holds them after every element
        # the longest read holds, in an order nobody observed.
        observed = {(k, e) for k, order in self.order.items() for e in order}
        committed = {t.id for t in txns if t.outcome == "ok"}
        committed.update(w for kv, w in self.writer.items() if kv in observed)
        self.committed = committed
        self.unread: dict[Any, list[tuple[Any, int]]] = defaultdict(list)
        for (key, element), w in self.writer.items():
            if w in committed and (key, element) not in observed:
                self.unread[key].append((element, w))

    def _compatible(self, key: Any, seen: tuple[Any, ...]) -> bool:
        order = self.order.get(key, ())
        return order[: len(seen)] == seen

    def nodes(self) -> set[int]:
        """The transactions that took effect as far as anyone can tell: every `ok` one,
        and `info` ones whose appends some read saw."""
        return set(self.committed)

    def anomalies(self) -> list[Anomaly]:
        found: list[Anomaly] = []
        txns = self.txns
        by_version: dict[tuple[Any, Any], list[int]] = defaultdict(list)
        for t in txns:
            if t.outcome != "ok":
                continue
            found.extend(self._internal(t))
            appended = {(m.key, m.value) for m in t.ops if m.f == APPEND}
            for m in t.ops:
                if not m.is_read:
                    continue
                seen: tuple[Any, ...] = m.value or ()
                if len(set(seen)) != len(seen):
                    dup = next(v for v in seen if seen.count(v) > 1)
                    found.append(anomaly("duplicate-elements", (t,),
                                         f"T1 read key {show(m.key)} = {show(seen)}, which "
                                         f"holds element {show(dup)} more than once", m.key))
                if not self._compatible(m.key, seen):
                    other = txns[self.order_reader[m.key]]
                    found.append(anomaly(
                        "incompatible-order", (other, t),
                        f"T1 read key {show(m.key)} = {show(self.order[m.key])} and T2 read "
                        f"it = {show(seen)}: the second is not a prefix of the first, so the "
                        "two reads cannot come from one order of appends", m.key))
                for element in seen:
                    kv = (m.key, element)
                    if kv in self.failed:
                        w = txns[self.failed[kv]]
                        found.append(anomaly(
                            "G1a", (t, w),
                            f"T1 read key {show(m.key)} = {show(seen)}, which holds "
                            f"{show(element)}, appended by T2, which failed (aborted read)",
                            m.key))
                    elif kv not in self.writer:
                        found.append(anomaly(
                            "garbage-read", (t,),
                            f"T1 read key {show(m.key)} = {show(seen)}, which holds "
                            f"{show(element)}, which no transaction appended", m.key))
            for m in ext_reads(t):
                seen = m.value or ()
                own = [v for v in seen if (m.key, v) in appended]
                if own:
                    found.append(anomaly(
                        "future-read", (t,),
                        f"T1 read key {show(m.key)} = {show(seen)}, which holds "
                        f"{show(own[0])}, an element T1 itself appends only later", m.key))
                if seen:
                    found.extend(self._intermediate(t, m.key, seen))
                if any(k == m.key for k, _ in appended):
                    by_version[(m.key, seen[-1] if seen else None)].append(t.id)
        for (key, last), ids in by_version.items():
            if len(ids) > 1:
                both = tuple(txns[i] for i in ids)
                names = " and ".join(f"T{i + 1}" for i in range(len(both)))
                state = "an empty list" if last is None else f"a list ending in {show(last)}"
                found.append(anomaly(
                    "lost-update", both,
                    f"{names} each read key {show(key)} as {state} and each appended to it: "
                    "whichever committed second should have seen the first's append", key))
        found.extend(self._dirty_updates())
        found.extend(self._torn_appends())
        return found

    def _torn_appends(self) -> Iterator[Anomaly]:
        """A transaction's appends to a key, where the version order holds any of them,
        must all be there, in the order it made them: it appended them atomically.
        (Missing only at the very end of the longest read is G1b, reported apart.)"""
        for key, order in self.order.items():
            if len(set(order)) != len(order):
                continue  # duplicate-elements says more
            seen_by: dict[int, list[Any]] = defaultdict(list)
            for element in order:
                w = self.writer.get((key, element))
                if w is not None:
                    seen_by[w].append(element)
            for w, seen in seen_by.items():
                made = [m.value for m in self.txns[w].ops if m.f == APPEND and m.key == key]
                if seen == made or (seen == made[: len(seen)] and seen[-1] == order[-1]):
                    continue
                reader = self.txns[self.order_reader[key]]
                yield anomaly(
                    "incompatible-order", (reader, self.txns[w]),
                    f"T1 read key {show(key)} = {show(order)}, which holds T2's appends "
                    f"{show(seen)}, but T2 appended {show(made)} to it in one transaction: no "
                    "order of whole transactions gives that list", key)

    def _intermediate(self, t: Txn, key: Any, seen: tuple[Any, ...]) -> Iterator[Anomaly]:
        w_id = self.writer.get((key, seen[-1]))
        if w_id is None or w_id == t.id:
            return
        w = self.txns[w_id]
        mine = [m.value for m in w.ops if m.f == APPEND and m.key == key]
        if mine[-1] != seen[-1]:
            yield anomaly(
                "G1b", (t, w),
                f"T1 read key {show(key)} = {show(seen)}, ending in {show(seen[-1])}, but T2 "
                f"appended {show(seen[-1])} and later {show(mine[-1])} to key {show(key)}: "
                "T1 saw T2's intermediate state", key)

    def _dirty_updates(self) -> Iterator[Anomaly]:
        for key, order in self.order.items():
            failed_at: int | None = None
            for element in order:
                kv = (key, element)
                if kv in self.failed:
                    failed_at = self.failed[kv] if failed_at is None else failed_at
                    bad = element
                elif failed_at is not None and kv in self.writer:
                    reader = self.txns[self.order_reader[key]]
                    f, w = self.txns[failed_at], self.txns[self.writer[kv]]
                    yield anomaly(
                        "dirty-update", (f, w, reader),
                        f"T3 read key {show(key)} = {show(order)}: T1's append of {show(bad)} "
                        f"is followed by T2's append of {show(element)}, but T1 failed: T2 "
                        "updated a state that was never committed", key)
                    break

    def _internal(self, t: Txn) -> Iterator[Anomaly]:
        known: dict[Any, tuple[Any, ...]] = {}
        pending: dict[Any, list[Any]] = defaultdict(list)  # appends since the last read
        for m in t.ops:
            if m.f == APPEND:
                if m.key in known:
                    known[m.key] = (*known[m.key], m.value)
                else:
                    pending[m.key].append(m.value)
                continue
            seen: tuple[Any, ...] = m.value or ()
            if m.key in known:
                expected = known[m.key]
                bad = seen != expected
            else:
                tail = pending.pop(m.key, [])
                expected = (*("…",), *tail)
                bad = bool(tail) and seen[len(seen) - len(tail):] != tuple(tail)
            if bad:
                yield anomaly(
                    "internal", (t,),
                    f"T1 read key {show(m.key)} = {show(seen)}, but its own earlier "
                    f"operations imply {show(expected)}", m.key)
            known[m.key] = seen

    def edges(self) -> Iterator[Edge]:
        writer = self.writer
        for key, order in self.order.items():
            prev_writer: int | None = None
            prev = None
            for element in order:
                w = writer.get((key, element))
                if w is not None and prev_writer is not None and w != prev_writer:
                    yield Edge(prev_writer, w, Why(Rel.WW, key, element, prev))
                prev_writer, prev = w, element
            if prev_writer is not None:
                for element, w in self.unread.get(key, ()):
                    if w != prev_writer:
                        yield Edge(prev_writer, w, Why(Rel.WW, key, element, prev, True))
        for t in self.txns:
            if t.outcome != "ok":
                continue
            for m in ext_reads(t):
                seen: tuple[Any, ...] = m.value or ()
                if seen:
                    w = writer.get((m.key, seen[-1]))
                    if w is not None and w != t.id:
                        yield Edge(w, t.id, Why(Rel.WR, m.key, seen[-1]))
                order = self.order.get(m.key, ())
                if len(order) > len(seen) and self._compatible(m.key, seen):
                    nxt = order[len(seen)]
                    w = writer.get((m.key, nxt))
                    if w is not None and w != t.id:
                        yield Edge(t.id, w, Why(Rel.RW, m.key, nxt,
                                                seen[-1] if seen else None))
                elif len(order) == len(seen) and self._compatible(m.key, seen):
                    for element, w in self.unread.get(m.key, ()):
                        if w != t.id:
                            yield Edge(t.id, w, Why(Rel.RW, m.key, element,
                                                    seen[-1] if seen else None, True))
