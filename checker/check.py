"""Checking a history file: read, pair, pick the model, check, report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from checker.formats import read_ops
from checker.history import UNOBSERVED, HistoryError, Operation, pair
from checker.linearizable import DEFAULT_MEMORY_LIMIT, CheckResult, KeyResult, check_spool
from checker.models import UNSET, make_model
from checker.models.base import Model, freeze
from checker.spool import Spool


@dataclass
class FileResult:
    file: str
    format: str
    result: CheckResult

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, **self.result.to_json()}


def choose_model(fs: set[str], fmt: str, keyed: bool) -> str:
    """The model a history most likely means, from its operations' names and format."""
    if not fs:
        return "kv" if fmt == "jsonl" else "cas-register"
    if fs <= {"get", "put", "append"}:
        return "kv-append"
    if fs <= {"acquire", "release"}:
        return "mutex"
    if fs == {"txn"}:
        return "multi-register"
    if fs <= {"read", "write", "cas", "create", "delete"}:
        if fmt in ("jsonl", "jepsen-log") or fs & {"create", "delete"}:
            return "kv" if keyed else "etcd"
        return "cas-register" if "cas" in fs else "register"
    raise HistoryError(
        f"cannot tell which model fits operations {', '.join(sorted(fs))}; give --model"
    )


def split_independent(operations: list[Operation]) -> bool:
    """Jepsen's independent histories carry [key value] tuples as values.

    When no op has a key and every op's value (and invocation value) is such a
    pair, move the first element into `key`. Returns whether it did.
    """
    if not operations or any(op.key is not None for op in operations):
        return False

    def is_pair(v: Any) -> bool:
        return isinstance(v, list | tuple) and len(v) == 2

    for op in operations:
        if not is_pair(op.value) or not (is_pair(op.invoke_value) or
                                         op.invoke_value is UNOBSERVED):
            return False
    for op in operations:
        op.key = freeze(op.value[0])
        op.value = op.value[1]
        if op.invoke_value is not UNOBSERVED:
            op.invoke_value = op.invoke_value[1]
    return True


def check_file(
    path: str,
    model: str | Model = "auto",
    initial: Any = UNSET,
    fmt: str = "auto",
    time_limit: float | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    workers: int | None = None,
    explain: bool | float = True,
    max_explained: int | None = None,
) -> FileResult:
    """Check one history file. Raises HistoryError (with file and line) on bad input.
    The time limit counts from the call, reading the file included. A jsonl history is
    read streaming and set aside by key (checker/spool.py): a long one is checked a
    group of keys at a time, never all in memory. `max_explained`: as in
    check_operations."""
    started = time.monotonic()
    deadline = None if time_limit is None else started + time_limit
    used = fmt
    with Spool() as spool:
        try:
            with open(path, encoding="utf-8", errors="strict") as stream:
                used, ops = read_ops(stream, path, fmt)
                counted = _Counter(ops, deadline)
                if used in ("edn", "jepsen-log"):
                    # Jepsen's [key value] pairs are told apart only once every op is seen
                    operations = list(pair(counted, path))
                    split_independent(operations)
                    for op in operations:
                        spool.add(op)
                    del operations
                else:  # key by key, streaming: a long history is never all in memory
                    for op in pair(counted, path):
                        spool.add(op)
                spool.finish()
        except _OutOfTime:
            name = model if isinstance(model, str) else model.name
            reason = "time limit reached while reading the file"
            return FileResult(path, used, CheckResult(
                "unknown", name, 0, time.monotonic() - started,
                [KeyResult(None, "unknown", 0, reason=reason, method="none")],
                events=counted.count))
        except UnicodeDecodeError as e:
            raise HistoryError(f"not UTF-8 text: {e.reason} at byte {e.start}", path) from None
        except OSError as e:
            raise HistoryError(e.strerror or str(e), path) from None
        if isinstance(model, str):
            name = model
            if name == "auto":
                try:
                    name = choose_model(spool.fs, used, spool.keyed)
                except HistoryError as e:
                    raise HistoryError(e.message, path) from None
            try:
                model = make_model(name, initial)
            except ValueError as e:
                raise HistoryError(str(e), path) from None
        try:
            result = check_spool(
                model,
                spool,
                time_limit=time_limit,
                memory_limit=memory_limit,
                workers=workers,
                explain=explain,
                max_explained=max_explained,
                ops_read=counted.count,
                started=started,
            )
        except HistoryError as e:
            raise HistoryError(e.message, path, e.line) from None
    return FileResult(path, used, result)


class _OutOfTime(Exception):
    pass


class _Counter:
    """Counts the ops a reader yields, without holding them; past the deadline (checked
    every 256 ops) it stops the reading with _OutOfTime."""

    def __init__(self, ops: Any, deadline: float | None = None):
        self.ops = ops
        self.count = 0
        self.deadline = deadline

    def __iter__(self) -> Any:
        deadline = self.deadline
        for op in self.ops:
            self.count += 1
            if deadline is not None and not self.count & 255 and time.monotonic() > deadline:
                raise _OutOfTime
            yield op
