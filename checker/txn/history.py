"""Transactions as the transactional checker sees them (docs/txn.md).

A transaction is one `Operation` whose `f` is `txn` and whose value is a list of
micro-operations `[f, key, value]`: `["r", k, v]` and `["append", k, v]` for the
list-append workload, `["r", k, v]` and `["w", k, v]` for rw-register. Invocations
carry reads as null; an `ok` completion carries what each read saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from checker.history import UNOBSERVED, HistoryError, Operation

Workload = Literal["append", "wr"]
WORKLOADS: Final = ("append", "wr")
READ: Final = "r"
APPEND: Final = "append"
WRITE: Final = "w"
_WRITE_F: Final = {"append": APPEND, "wr": WRITE}


class MicroOp(NamedTuple):
    """One step of a transaction: a read (`value` what it saw, None when unknown or
    empty) or a write (`append` of an element to a list, `w` of a register value).
    A NamedTuple: a history holds hundreds of thousands, built fast."""

    f: str
    key: Any
    value: Any

    @property
    def is_read(self) -> bool:
        return self.f == READ

    def to_json(self) -> list[Any]:
        return [self.f, self.key, list(self.value) if isinstance(self.value, tuple)
                else self.value]


@dataclass(frozen=True, slots=True)
class Txn:
    """One transaction: its outcome, its micro-operations and where it was recorded.

    `id` is its position in invocation order; `invoked`/`completed` are history
    indexes (`completed` None for `info` and never-completed transactions).
    """

    id: int
    process: int | str
    outcome: Literal["ok", "fail", "info"]
    ops: tuple[MicroOp, ...]
    invoked: int
    completed: int | None
    line: int | None
    completed_line: int | None

    def where(self) -> str:
        """The history lines (or indexes) of its invocation and completion."""
        if self.line is not None:
            if self.completed_line is not None:
                return f"lines {self.line}-{self.completed_line}"
            return f"line {self.line}"
        if self.completed is not None:
            return f"indexes {self.invoked}-{self.completed}"
        return f"index {self.invoked}"

    def describe(self) -> str:
        ops = " ".join(_micro_text(m) for m in self.ops)
        return f"{self.outcome} txn by process {self.process} ({self.where()}): [{ops}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "process": self.process,
            "type": self.outcome,
            "value": [m.to_json() for m in self.ops],
            "invoke_index": self.invoked,
            "complete_index": self.completed,
        }
        if self.line is not None:
            out["invoke_line"] = self.line
        if self.completed_line is not None:
            out["complete_line"] = self.completed_line
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], id: int = 0) -> Txn:
        """The transaction `to_json` wrote (results.json's anomalies)."""
        return cls(
            id=id, process=data["process"], outcome=data["type"],
            ops=tuple(MicroOp(f, k, tuple(v) if isinstance(v, list) else v)
                      for f, k, v in data["value"]),
            invoked=data["invoke_index"], completed=data.get("complete_index"),
            line=data.get("invoke_line"), completed_line=data.get("complete_line"),
        )  # fmt: skip


def _micro_text(m: MicroOp) -> str:
    value = m.value
    if isinstance(value, tuple):
        value = "[" + " ".join(map(str, value)) + "]"
    elif value is None:
        value = "nil"
    return f"[{m.f} {m.key} {value}]"


_SCALARS: Final = frozenset((int, str))  # by exact type: not bool, a subclass of int


_SEQUENCES: Final = frozenset((list, tuple))


def _parse_micro(raw: Any, workload: Workload, done: bool, source: str | None,
                 line: int | None) -> MicroOp:
    if type(raw) not in _SEQUENCES or len(raw) != 3:
        raise _bad(raw, "must be a list [f, key, value]", source, line)
    f, key, value = raw
    if f != READ and f != _WRITE_F[workload]:
        raise _bad(raw, f"f must be {READ!r} or {_WRITE_F[workload]!r} in the {workload} "
                   "workload", source, line)
    if type(key) not in _SCALARS:
        raise _bad(raw, "the key must be an integer or a string", source, line)
    if f != READ:
        if type(value) not in _SCALARS:
            raise _bad(raw, "the written value must be an integer or a string", source, line)
        return MicroOp(f, key, value)
    if not done or value is None:
        return MicroOp(f, key, None)
    if workload == "append":
        if type(value) not in _SEQUENCES or not _SCALARS.issuperset(map(type, value)):
            raise _bad(raw, "a read of a list must be null or a list of integers or strings",
                       source, line)
        return MicroOp(f, key, tuple(value))
    if type(value) not in _SCALARS:
        raise _bad(raw, "a read of a register must be null, an integer or a string", source,
                   line)
    return MicroOp(f, key, value)


def _bad(raw: Any, message: str, source: str | None, line: int | None) -> HistoryError:
    return HistoryError(f"micro-operation {raw!r}: {message}", source, line)


def transactions(operations: Iterable[Operation], workload: Workload,
                 source: str | None = None) -> list[Txn]:
    """The transactions of a paired history, in invocation order.

    Raises HistoryError, naming the line, for an operation that is not a well-formed
    transaction of the workload, and for an `ok` completion whose micro-operations
    differ from its invocation's (other than the values reads saw).
    """
    out: list[Txn] = []
    for op in sorted(operations, key=lambda o: o.invoked):
        out.append(_txn(len(out), op, workload, source))
    return out


def _txn(id: int, op: Operation, workload: Workload, source: str | None) -> Txn:
    line = op.completed_line if op.outcome == "ok" else op.line
    if op.f != "txn":
        raise HistoryError(f"expected f 'txn' in the {workload} workload, got {op.f!r}",
                           source, op.line)
    done = op.outcome == "ok"
    value = op.value if done else op.invoke_value
    if value is UNOBSERVED and not done:
        value = op.value
    if not isinstance(value, list | tuple):
        raise HistoryError(f"a transaction's value must be a list of micro-operations, "
                           f"got {value!r}", source, line)
    ops = tuple(_parse_micro(m, workload, done, source, line) for m in value)
    if done and isinstance(op.invoke_value, list | tuple) and not _same_shape(
            op.invoke_value, ops):
        raise HistoryError("the completion's micro-operations differ from its "
                           f"invocation's (line {op.line})", source, line)
    return Txn(
        id=id,
        process=op.process,
        outcome=op.outcome,
        ops=ops,
        invoked=op.invoked,
        completed=op.completed,
        line=op.line,
        completed_line=op.completed_line,
    )


def _same_shape(invoked: list[Any] | tuple[Any, ...], ops: tuple[MicroOp, ...]) -> bool:
    """The invocation asked for these micro-operations (reads: whatever they saw)."""
    if len(invoked) != len(ops):
        return False
    for raw, m in zip(invoked, ops, strict=True):
        if not isinstance(raw, list | tuple) or len(raw) != 3:
            return False
        if raw[0] != m.f or raw[1] != m.key or (not m.is_read and raw[2] != m.value):
            return False
    return True


def ext_reads(txn: Txn) -> Iterator[MicroOp]:
    """Reads of a key before the transaction wrote it, the first of each key: what it
    saw of other transactions."""
    seen: set[Any] = set()
    for m in txn.ops:
        if m.key in seen:
            continue
        seen.add(m.key)
        if m.is_read:
            yield m


def final_writes(txn: Txn) -> dict[Any, Any]:
    """Each key's last written value (append: element) in the transaction."""
    return {m.key: m.value for m in txn.ops if not m.is_read}
