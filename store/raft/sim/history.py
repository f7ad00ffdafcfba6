"""The clients' history, as they saw it and as the simulator knows it happened.

Every client operation is stamped with virtual time (and a sequence number, to
order events at one instant). ``observed()`` is what the clients saw: a write
that timed out or whose node crashed is indeterminate (info). ``resolved()``
uses what only the simulator knows, the first moment any node applied each
command, to settle those: a write applied somewhere took effect (its commit lies
between its invocation and that first application), and one applied nowhere by
the end took no effect anyone could observe. Every linearization of the
resolved history is one of the observed history, and without open indeterminate
writes the checker's search stays small even for long runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checker.history import UNOBSERVED, Op, OpType, Outcome

Stamp = tuple[int, int]  # (virtual ms, sequence)


@dataclass(slots=True)
class ClientOp:
    client: int
    process: int
    f: str  # read, write, cas
    key: str
    value: Any  # write: v; cas: [old, new]; read: what it returned (once ok)
    node: int
    tag: int | bytes  # request id (write, cas) or read context
    invoked: Stamp
    outcome: Outcome | None = None
    completed: Stamp | None = None
    error: Any = None

    @property
    def done(self) -> bool:
        return self.outcome is not None


class History:
    __slots__ = ("applied", "ops", "seq")

    def __init__(self) -> None:
        self.ops: list[ClientOp] = []
        self.seq = 0
        self.applied: dict[int, tuple[Stamp, bool]] = {}  # request -> first application

    def stamp(self, now: int) -> Stamp:
        self.seq += 1
        return (now, self.seq)

    def invoke(
        self,
        now: int,
        client: int,
        process: int,
        f: str,
        key: str,
        value: Any,
        node: int,
        tag: int | bytes,
    ) -> ClientOp:
        op = ClientOp(client, process, f, key, value, node, tag, self.stamp(now))
        self.ops.append(op)
        return op

    def complete(self, now: int, op: ClientOp, outcome: Outcome, error: Any = None) -> None:
        op.outcome = outcome
        op.completed = self.stamp(now)
        op.error = error

    def was_applied(self, now: int, req: int, ok: bool) -> None:
        """Some node applied request ``req`` (``ok``: it took effect); the first one counts."""
        if req not in self.applied:
            self.applied[req] = (self.stamp(now), ok)

    def observed(self) -> list[Op]:
        """What the clients saw."""
        events: list[tuple[Stamp, OpType, ClientOp]] = []
        for op in self.ops:
            events.append((op.invoked, "invoke", op))
            if op.outcome is not None and op.completed is not None:
                events.append((op.completed, op.outcome, op))
        return _ops(events)

    def resolved(self) -> list[Op]:
        """What happened: indeterminate writes settled by whether and when they applied."""
        events: list[tuple[Stamp, OpType, ClientOp]] = []
        last = max(((op.completed or op.invoked)[0] for op in self.ops), default=0)
        end = (last + 1, 0)  # after everything: for writes still pending at the end
        for op in self.ops:
            events.append((op.invoked, "invoke", op))
            outcome, when = op.outcome, op.completed
            if op.f != "read" and outcome in (None, "info"):
                assert isinstance(op.tag, int)
                applied = self.applied.get(op.tag)
                if applied is None:
                    outcome = "fail"  # no node applied it: no read can have seen it
                    when = when or end
                else:
                    stamp, ok = applied
                    outcome = "ok" if ok else "fail"
                    when = max(when, stamp) if when else stamp
            if outcome is not None and when is not None:
                events.append((when, outcome, op))
        return _ops(events)


def _ops(events: list[tuple[Stamp, OpType, ClientOp]]) -> list[Op]:
    events.sort(key=lambda e: e[0])
    out = []
    for i, (stamp, kind, op) in enumerate(events):
        if kind == "invoke":
            value = UNOBSERVED if op.f == "read" else op.value
            error = None
        else:
            value = op.value if kind != "info" or op.f != "read" else UNOBSERVED
            error = op.error
        out.append(Op(i, op.process, kind, op.f, value, op.key, stamp[0] * 1_000_000, error))
    return out
