"""Reading histories: the native JSON Lines, Jepsen/Knossos EDN, Jepsen log lines."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from checker.formats.bounds import bounded_lines
from checker.formats.edn import read_edn
from checker.formats.jepsen_log import looks_like_op, read_jepsen_log
from checker.formats.jsonl import read_jsonl, write_jsonl
from checker.history import HistoryError, Op

FORMATS = ("jsonl", "edn", "jepsen-log")
READERS = {"jsonl": read_jsonl, "edn": read_edn, "jepsen-log": read_jepsen_log}
_SNIFF_LINES = 200


def detect(head: list[str], name: str = "") -> str | None:
    """The format of a file from its first lines (and, failing that, its name)."""
    if any(looks_like_op(line) for line in head):
        return "jepsen-log"
    for line in head:
        text = line.strip().lstrip("[(").lstrip()
        if not text or text.startswith(";"):
            continue
        if text.startswith('{"') or text.startswith("{ \""):
            return "jsonl"
        if text.startswith(("{:", "{", "#")):
            return "edn"
        break
    suffix = Path(name).suffix
    return {".jsonl": "jsonl", ".edn": "edn", ".log": "jepsen-log"}.get(suffix)


def read_ops(stream: TextIO, source: str, fmt: str = "auto") -> tuple[str, Iterator[Op]]:
    """The format used and a stream of ops; HistoryError when the format is unclear or
    a line is past the bounds (checker/formats/bounds.py)."""
    lines = bounded_lines(stream, source)
    if fmt == "auto":
        head = list(itertools.islice(lines, _SNIFF_LINES))
        found = detect(head, source)
        if found is None:
            raise HistoryError(
                "cannot tell the format (jsonl, edn or jepsen-log); give --format", source
            )
        return found, READERS[found](itertools.chain(head, lines), source)
    if fmt not in READERS:
        raise HistoryError(f"unknown format {fmt!r}; known: auto, {', '.join(FORMATS)}", source)
    return fmt, READERS[fmt](lines, source)


__all__ = ["FORMATS", "HistoryError", "detect", "read_ops", "write_jsonl"]
