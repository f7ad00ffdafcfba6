"""Turning one decoded record (from any format) into an `Op`, with checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checker.history import NEMESIS, OP_TYPES, UNOBSERVED, HistoryError, Op


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: its repr, cut short (a line is 1 MiB)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class OpBuilder:
    """Checks fields and fills in missing indexes (the position in the file)."""

    def __init__(self, source: str | None):
        self.source = source
        self.next_index = 0

    def fail(self, message: str, line: int | None) -> HistoryError:
        return HistoryError(message, self.source, line)

    def build(self, record: Mapping[str, Any], line: int | None) -> Op:
        if not isinstance(record, Mapping):
            raise self.fail(f"an op must be a map, got {type(record).__name__}", line)
        typ = record.get("type")
        if typ not in OP_TYPES:
            raise self.fail(f"field 'type' must be one of {', '.join(OP_TYPES)}, got {shown(typ)}",
                            line)
        process = record.get("process")
        if isinstance(process, bool) or not (isinstance(process, int) or process == NEMESIS):
            if isinstance(process, str) and process.isdigit():
                process = int(process)
            else:
                raise self.fail(
                    f"field 'process' must be an integer or \"nemesis\", got {shown(process)}", line
                )
        f = record.get("f")
        if not isinstance(f, str) or not f:
            raise self.fail(f"field 'f' must be a non-empty string, got {shown(f)}", line)
        index = record.get("index")
        if index is None:
            index = self.next_index
        elif isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise self.fail(
                f"field 'index' must be a non-negative integer, got {shown(index)}", line
            )
        self.next_index = index + 1
        t = record.get("time")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int)):
            raise self.fail(f"field 'time' must be integer nanoseconds, got {shown(t)}", line)
        key = record.get("key")
        if isinstance(key, list):
            key = tuple(key)
        if isinstance(key, dict):
            raise self.fail("field 'key' must be a string, number or list", line)
        return Op(
            index=index,
            process=process,
            type=typ,
            f=f,
            value=record.get("value", UNOBSERVED),
            key=key,
            time=t,
            error=record.get("error"),
            line=line,
        )
