"""The history, appended to `history.jsonl` as it happens.

One recorder per run: every invocation and completion, the clients' and the nemesis',
becomes one JSON line (the checker's format, docs/history.md) with an index that only
grows and the time in nanoseconds since the start on one monotonic clock. Each line
is written and flushed before the operation goes on, so a harness that crashes loses
nothing already recorded. Nothing per operation stays in memory: the recorder keeps
counts (for the progress display) and how many events it wrote; everything after the
run (checkers, statistics, report) reads history.jsonl back, streaming.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from checker.formats import read_ops
from checker.history import NEMESIS, Op, OpType
from harness.ops import Completion, Invocation


@dataclass
class Tally:
    """Counts for the progress display."""

    invoked: int = 0
    completed: Counter[str] = field(default_factory=Counter)  # ok / fail / info (clients)


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self.started_ns = time.monotonic_ns()
        self.events = 0  # lines written: the next line's index
        self.tally = Tally()

    def begin(self) -> None:
        """Time 0 of the history: the start of the workload, before any operation."""
        if self.events:
            raise RuntimeError("the history has begun already")
        self.started_ns = time.monotonic_ns()

    def now_ns(self) -> int:
        return time.monotonic_ns() - self.started_ns

    def seconds(self) -> float:
        return self.now_ns() / 1e9

    def _append(self, op: Op) -> Op:
        self._file.write(json.dumps(op.to_json(), separators=(",", ":")) + "\n")
        self._file.flush()
        self.events += 1
        return op

    def invoke(self, process: int | str, op: Invocation) -> Op:
        kind: OpType = "info" if process == NEMESIS else "invoke"
        if process != NEMESIS:
            self.tally.invoked += 1
        return self._append(Op(self.events, process, kind, op.f, op.value, op.key, self.now_ns()))

    def complete(self, process: int | str, op: Invocation, done: Completion) -> Op:
        kind: OpType = "info" if process == NEMESIS else done.type
        if process != NEMESIS:
            self.tally.completed[done.type] += 1
        return self._append(
            Op(self.events, process, kind, op.f, done.value, op.key, self.now_ns(), done.error)
        )

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_history(path: Path) -> list[Op]:
    """A recorded history.jsonl read back, whole (small histories, tests)."""
    return list(stream_history(path))


def stream_history(path: Path) -> Iterator[Op]:
    """A recorded history.jsonl read back one line at a time: memory bounded by one line."""
    with open(path, encoding="utf-8") as stream:
        _, ops = read_ops(stream, str(path), "jsonl")
        yield from ops
