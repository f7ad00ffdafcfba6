"""Jepsen's log lines, as in porcupine's etcd test data.

    INFO  jepsen.util - 3	:invoke	:write	1
    2017-03-13 09:45:31,427{GMT}	INFO	[jepsen worker 3] jepsen.util: 3	:ok	:read	2

Fields after `jepsen.util`: process, type, f, value, and an optional error.
Other lines of the log are skipped. A completion whose value is a keyword
(`:timed-out`) carries an error, not a value: `:fail :read :timed-out` is a
read with an unknown result, `:info :write :timed-out` an indeterminate write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from checker.formats.bounds import check_value_text
from checker.formats.common import OpBuilder
from checker.formats.edn import edn_value
from checker.history import UNOBSERVED, Op

LINE = re.compile(r"jepsen\.util(?::|\s+-)\s+(?P<rest>\S.*)$")
_TYPES = (":invoke", ":ok", ":fail", ":info")


def looks_like_op(line: str) -> bool:
    return "jepsen.util" in line and any(t in line for t in _TYPES)


def read_jepsen_log(lines: Iterable[str], source: str | None = None) -> Iterator[Op]:
    builder = OpBuilder(source)
    for number, line in enumerate(lines, 1):
        match = LINE.search(line.rstrip("\r\n"))
        if match is None:
            continue
        fields = re.split(r"\t|\s{2,}| (?=:)", match.group("rest").strip(), maxsplit=3)
        if len(fields) < 2 or fields[1] not in _TYPES:
            continue  # some other jepsen.util message
        if len(fields) < 3:
            raise builder.fail("an op line needs process, type, f and value", number)
        process_text, typ, f = fields[0], fields[1][1:], fields[2].lstrip(":")
        rest = fields[3] if len(fields) > 3 else "nil"
        value_text, _, error_text = rest.partition("\t")
        check_value_text(line, source, number)
        try:
            value = edn_value(value_text.strip()) if value_text.strip() else None
            error = edn_value(error_text.strip()) if error_text.strip() else None
        except Exception as e:
            raise builder.fail(f"value is not valid EDN: {e}", number) from None
        if typ in ("info", "fail") and value_text.strip().startswith(":"):
            value, error = UNOBSERVED, value
        if typ == "invoke" and value is None:
            value = UNOBSERVED
        process: object = process_text.lstrip(":")
        record = {"process": process, "type": typ, "f": f, "value": value, "error": error}
        if value is UNOBSERVED:
            del record["value"]
        yield builder.build(record, number)
