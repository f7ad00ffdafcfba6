"""Anomalies in words a person can check against the history by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checker.txn.history import Txn
from checker.txn.rels import Rel, Why


def show(value: Any) -> str:
    """A value as the history shows it, EDN-like: nil, [1 2 3]."""
    if value is None:
        return "nil"
    if isinstance(value, list | tuple):
        return "[" + " ".join(show(v) for v in value) + "]"
    return str(value)


def name_txns(txns: Sequence[Txn]) -> list[str]:
    """`T1 = ok txn by process 3 (lines 7-9): [...]`, one line per transaction."""
    return [f"T{i + 1} = {t.describe()}" for i, t in enumerate(txns)]


def edge_text(workload: str, a: str, b: str, txn_a: Txn, txn_b: Txn, why: Why) -> str:
    """Why `a` precedes `b`, in one sentence."""
    key, value, before = why.key, show(why.value), show(why.before)
    rel = why.rel
    if rel == Rel.PROCESS:
        return f"{a} < {b} because process {txn_a.process} ran {a} and then {b}"
    if rel == Rel.REALTIME:
        done = (f"line {txn_a.completed_line}" if txn_a.completed_line is not None
                else f"index {txn_a.completed}")
        began = (f"line {txn_b.line}" if txn_b.line is not None else f"index {txn_b.invoked}")
        return f"{a} < {b} because {a} completed ({done}) before {b} began ({began})"
    if workload == "append":
        if rel == Rel.WW and why.unread:
            return (f"{a} < {b} because no read saw {b}'s append of {value} to key {key}, "
                    f"so it comes after {a}'s append of {before}, the last element reads saw")
        if rel == Rel.WW:
            return (f"{a} < {b} because {b} appended {value} after {a} appended {before} "
                    f"to key {key}")
        if rel == Rel.WR:
            return f"{a} < {b} because {b} read {a}'s append of {value} to key {key}"
        seen = ("an empty list" if why.before is None else f"a list ending in {before}")
        which = ("which no read saw" if why.unread else "the next element")
        return (f"{a} < {b} because {a} read key {key} as {seen} and did not see {b}'s "
                f"append of {value}, {which}")
    if rel == Rel.WW:
        return (f"{a} < {b} because {b} read key {key} = {before}, {a}'s write, and then "
                f"wrote {value}")
    if rel == Rel.WR:
        return f"{a} < {b} because {b} read key {key} = {value}, which {a} wrote"
    state = "nil (the initial state)" if why.before is None else before
    return (f"{a} < {b} because {a} read key {key} = {state} and {b} wrote {value}, a later "
            f"version of key {key}")
