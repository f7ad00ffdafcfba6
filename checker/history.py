"""The history model: operations as recorded, and their pairing into intervals.

A history is a sequence of `Op`s in the order they happened (file order). An
invocation and its completion by the same process form one `Operation`, the
interval the checker reasons about. See docs/history.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: Final = ("invoke", "ok", "fail", "info")
NEMESIS: Final = "nemesis"


class _Unobserved:
    """A value nobody saw: a read that timed out, an invocation of a read.

    Distinct from None, which is an observed absence (a read of a missing key).
    """

    _instance: _Unobserved | None = None

    def __new__(cls) -> _Unobserved:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNOBSERVED"

    def __reduce__(self) -> str:
        return "UNOBSERVED"


UNOBSERVED: Final = _Unobserved()


class HistoryError(ValueError):
    """Bad input, with the file and line it came from."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        where = source or "<history>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Op:
    """One line of a history, as recorded."""

    index: int
    process: int | str
    type: OpType
    f: str
    value: Any = UNOBSERVED
    key: Any = None
    time: int | None = None
    error: Any = None
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def is_client(self) -> bool:
        return self.process != NEMESIS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "process": self.process, "type": self.type}
        out["f"] = self.f
        if self.key is not None:
            out["key"] = self.key
        if self.value is not UNOBSERVED:
            out["value"] = self.value
        if self.time is not None:
            out["time"] = self.time
        if self.error is not None:
            out["error"] = self.error
        return out


Outcome = Literal["ok", "fail", "info"]


@dataclass(slots=True)
class Operation:
    """An invocation paired with its completion: one interval of the history.

    `invoked` and `completed` are positions in the history (the invocation's and the
    completion's `index`); `completed` is None when the outcome is unknown (an `info`
    completion, or none at all): such an operation may take effect at any
    instant after `invoked`, or never.
    """

    process: int | str
    f: str
    key: Any
    value: Any
    outcome: Outcome
    invoked: int
    completed: int | None
    invoke_value: Any = UNOBSERVED
    error: Any = None
    line: int | None = None  # the file line of the invocation
    completed_line: int | None = None  # and of the completion, when there is one

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"process": self.process, "f": self.f}
        if self.key is not None:
            out["key"] = self.key
        if self.value is not UNOBSERVED:
            out["value"] = self.value
        out["result"] = self.outcome
        out["invoke_index"] = self.invoked
        out["complete_index"] = self.completed
        if self.line is not None:
            out["invoke_line"] = self.line
        if self.completed_line is not None:
            out["complete_line"] = self.completed_line
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        """The operation `to_json` wrote (its invocation's value is not kept there)."""
        return cls(
            process=data["process"], f=data["f"], key=data.get("key"),
            value=data.get("value", UNOBSERVED), outcome=data["result"],
            invoked=data["invoke_index"], completed=data.get("complete_index"),
            error=data.get("error"), line=data.get("invoke_line"),
            completed_line=data.get("complete_line"),
        )  # fmt: skip


def pair(ops: Iterable[Op], source: str | None = None) -> Iterator[Operation]:
    """Pair invocations with completions, streaming.

    Yields each `Operation` when its completion arrives (so in completion
    order), then the ones never completed. Nemesis ops are skipped. Raises
    HistoryError for a completion without an invocation, a second invocation
    by a busy process, or a completion whose f differs from its invocation's.
    """
    pending: dict[Any, Op] = {}
    last_index = -1
    for op in ops:
        if op.index <= last_index:
            raise HistoryError(
                f"index {op.index} is not greater than the previous index {last_index}",
                source,
                op.line,
            )
        last_index = op.index
        if not op.is_client:
            continue
        if op.type == "invoke":
            busy = pending.get(op.process)
            if busy is not None:
                raise HistoryError(
                    f"process {op.process} invokes {op.f} while its {busy.f} "
                    f"(line {busy.line}) has not completed",
                    source,
                    op.line,
                )
            pending[op.process] = op
            continue
        inv = pending.pop(op.process, None)
        if inv is None:
            raise HistoryError(
                f"{op.type} {op.f} by process {op.process} has no invocation", source, op.line
            )
        if inv.f != op.f:
            raise HistoryError(
                f"process {op.process} completes {op.f} but invoked {inv.f} (line {inv.line})",
                source,
                op.line,
            )
        if inv.key != op.key and op.key is not None:
            raise HistoryError(
                f"process {op.process} completes key {op.key!r} but invoked key {inv.key!r}",
                source,
                op.line,
            )
        yield _operation(inv, op)
    for inv in pending.values():
        yield _operation(inv, None)


def _operation(inv: Op, done: Op | None) -> Operation:
    if done is None or done.type == "info":
        outcome: Outcome = "info"
        value = inv.value
        completed = None
    else:
        outcome = "ok" if done.type == "ok" else "fail"
        value = done.value if done.value is not UNOBSERVED else inv.value
        completed = done.index
    return Operation(
        process=inv.process,
        f=inv.f,
        key=inv.key,
        value=value,
        outcome=outcome,
        invoked=inv.index,
        completed=completed,
        invoke_value=inv.value,
        error=done.error if done is not None else None,
        line=inv.line,
        completed_line=done.line if done is not None else None,
    )


@dataclass(slots=True)
class Timed:
    """An operation with the times (ns) of its invocation and of its completion line
    (None when it never completed; an `info` completion has its time here although the
    operation's `completed` is None)."""

    operation: Operation
    invoked_ns: int
    completed_ns: int | None


def timed_pairs(ops: Iterable[Op], source: str | None = None) -> Iterator[Timed]:
    """`pair`, streaming, with each operation's times; memory: the open invocations."""
    open_times: dict[int, int] = {}
    last: list[Op | None] = [None]

    def watched() -> Iterator[Op]:
        for op in ops:
            if op.is_client and op.type == "invoke":
                open_times[op.index] = op.time or 0
            last[0] = op
            yield op

    for operation in pair(watched(), source):
        done = last[0]
        finished = (done is not None and done.is_client and done.type != "invoke"
                    and done.process == operation.process
                    and operation.invoked in open_times)
        invoked_ns = open_times.pop(operation.invoked, 0)
        yield Timed(operation, invoked_ns, (done.time or 0) if finished and done else None)
