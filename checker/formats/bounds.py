"""Bounds on what one line of a history may hold (docs/history.md, "Bounds").

Hostile or broken input gets a one-line error naming the file, the line and the bound,
never a traceback, and reading never holds more than one bounded line: a line is read
with `readline(limit)`, so a 200 MB file that is one line costs a megabyte, not 200.
A value's nesting and its numbers' digits are bounded too, because Python's decoders
recurse on nesting and refuse (or crawl on) integers of thousands of digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TextIO

from checker.history import HistoryError

MAX_LINE_CHARS = 1 << 20  # characters of one line, its newline not counted
MAX_DEPTH = 100  # brackets open at once ([, {, ( together)
MAX_DIGITS = 4300  # digits in a row in a number (Python's own default bound on int())

# A string (skipped whole), an EDN character literal, a bracket, a run of digits.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|\\.|[\[\]{}()]|\d+', re.S)


def bounded_lines(stream: TextIO, source: str | None) -> Iterator[str]:
    """The stream's lines; HistoryError at the first one longer than MAX_LINE_CHARS,
    having read no more of it than the bound."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            raise HistoryError(
                f"line longer than {MAX_LINE_CHARS:,} characters (the bound on a history "
                "line; put one operation on each line)",
                source,
                number,
            )
        yield line


def check_value_text(text: str, source: str | None, line: int | None) -> None:
    """HistoryError unless the text of a value (a JSON line, an EDN form) nests at most
    MAX_DEPTH deep and has no number of more than MAX_DIGITS digits."""
    if len(text) <= MAX_DIGITS and (
        text.count("[") + text.count("{") + text.count("(") <= MAX_DEPTH
    ):
        return  # every line of an ordinary history: no scan needed
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first in "[{(":
            depth += 1
            if depth > MAX_DEPTH:
                raise HistoryError(
                    f"value nested more than {MAX_DEPTH} deep (the bound on nesting) "
                    f"at column {match.start() + 1}",
                    source,
                    line,
                )
        elif first in "]})":
            depth = max(depth - 1, 0)
        elif first.isdigit() and len(token) > MAX_DIGITS:
            raise HistoryError(
                f"a number of {len(token):,} digits at column {match.start() + 1} (the bound "
                f"is {MAX_DIGITS} digits)",
                source,
                line,
            )
