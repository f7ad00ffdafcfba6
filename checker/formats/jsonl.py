"""The native format: JSON Lines, one op per line (docs/history.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from checker.formats.bounds import MAX_DEPTH, MAX_DIGITS, check_value_text
from checker.formats.common import OpBuilder
from checker.history import Op


def read_jsonl(lines: Iterable[str], source: str | None = None) -> Iterator[Op]:
    builder = OpBuilder(source)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_DIGITS or line.count("[") + line.count("{") > MAX_DEPTH:
            check_value_text(line, source, number)  # else no number or nesting can be past
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise builder.fail(f"not a JSON object: {e.msg} at column {e.colno}", number) from None
        except (ValueError, RecursionError):  # past Python's own bounds, should they be lower
            raise builder.fail(
                f"a value past the bounds ({MAX_DEPTH} deep, numbers of {MAX_DIGITS} digits)",
                number,
            ) from None
        yield builder.build(record, number)


def write_jsonl(op: Op) -> str:
    return json.dumps(op.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
