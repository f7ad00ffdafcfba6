"""The native format: JSON Lines, one op per line (docs/history.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from checker.formats.common import OpBuilder
from checker.history import Op


def read_jsonl(lines: Iterable[str], source: str | None = None) -> Iterator[Op]:
    builder = OpBuilder(source)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise builder.fail(f"not a JSON object: {e.msg} at column {e.colno}", number) from None
        yield builder.build(record, number)


def write_jsonl(op: Op) -> str:
    return json.dumps(op.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
