"""Jepsen / Knossos histories in EDN, decoded by the edn-format package.

Accepted: one vector (or list) of op maps, or one op map after another (one per line in
porcupine's data); `;` comments; `#jepsen.history.Op{...}` records. To stream
and to name lines in errors, the text is cut into top-level forms by tracking
brackets, strings and comments only; every form is then decoded by edn-format,
many at a time, except the simple forms histories are made of, which
`edn_fast` reads directly (edn-format rebuilds its lexer and parser per call).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

from checker.formats import edn_fast
from checker.formats.bounds import MAX_LINE_CHARS, check_value_text
from checker.formats.common import OpBuilder, shown
from checker.history import Op

_BATCH = 512
_OPEN = {"{": "}", "[": "]", "(": ")"}
_CLOSE = frozenset("}])")
_DELIMITERS = frozenset(' \t\r\n,;{}[]()"')
_SLOW = frozenset(';\\#')  # comments, escapes, tags: walk the line


def _pass_through(value: Any) -> Any:
    return value


_EDN: Any = None


def edn_format() -> Any:
    """The edn-format module, imported (it takes a while) and set up on first use."""
    global _EDN
    if _EDN is None:
        import edn_format as module

        for tag in ("jepsen.history.Op", "jepsen.history/Op"):
            module.add_tag(tag, _pass_through)
        _EDN = module
    return _EDN


def plain(value: Any) -> Any:
    """EDN data as plain Python: keywords and symbols become their names."""
    edn = edn_format()
    if isinstance(value, edn.Keyword | edn.Symbol):
        return value.name
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [plain(v) for v in value]
    if isinstance(value, Set):
        return sorted((plain(v) for v in value), key=repr)
    return value


def split_forms(lines: Iterable[str], source: str | None) -> Iterator[tuple[str, int]]:
    """Top-level op forms and the line each starts on; a single outer vector is opened."""
    closers: list[str] = []  # brackets open inside the current form
    outer = ""  # the closing bracket of the one outer vector or list we are in
    started = False  # any form or the outer vector seen yet
    form: list[str] = []  # the current form's text from earlier lines
    start_line = 0
    in_string = False
    in_atom = False
    form_chars = 0  # the length of `form`
    for number, line in enumerate(lines, 1):
        if not (form or closers or in_string or in_atom):
            # The common case, one flat map on its own line: no need to walk it.
            text = line.strip(" \t\r\n,")
            if (text[:1] == "{" and text[-1:] == "}" and text.count("{") == 1
                    and text.count("}") == 1 and not _SLOW.intersection(text)
                    and text.count("[") == text.count("]")
                    and text.count("(") == text.count(")")):
                started = True
                yield text, number
                continue
        seg = 0 if (form or closers or in_string) else -1
        i, n = 0, len(line)
        while i <= n:
            ch = line[i] if i < n else "\n"
            if in_string:
                if ch == "\\":
                    i += 2
                    continue
                if ch == '"':
                    in_string = False
                    if not closers:
                        form.append(line[seg : i + 1])
                        yield "".join(form), start_line
                        form, seg, form_chars = [], -1, 0
                i += 1
                continue
            if in_atom:
                if ch not in _DELIMITERS:
                    i += 1
                    continue
                in_atom = False
                if not closers and not line[seg:i].lstrip().startswith("#"):
                    form.append(line[seg:i])
                    yield "".join(form), start_line
                    form, seg, form_chars = [], -1, 0
            if i == n:
                break
            if ch == ";":
                break
            if ch in " \t\r\n,":
                i += 1
                continue
            if seg < 0:
                if ch in "[(" and not started:
                    outer, started = _OPEN[ch], True
                    i += 1
                    continue
                if ch == outer and not closers:
                    outer = ""
                    i += 1
                    continue
                seg, start_line, started = i, number, True
            if ch == '"':
                in_string = True
            elif ch in _OPEN:
                closers.append(_OPEN[ch])
            elif ch in _CLOSE:
                if not closers or closers[-1] != ch:
                    raise OpBuilder(source).fail(f"unbalanced {ch!r}", number)
                closers.pop()
                if not closers:
                    form.append(line[seg : i + 1])
                    yield "".join(form), start_line
                    form, seg, form_chars = [], -1, 0
            elif ch == "\\":
                i += 1  # a character literal such as \{
            elif ch != "#" or i + 1 >= n or line[i + 1] not in "{_":
                in_atom = True
            i += 1
        if seg >= 0:
            form.append(line[seg:] if line.endswith("\n") else line[seg:] + "\n")
            form_chars += len(form[-1])
            if form_chars > MAX_LINE_CHARS:
                raise OpBuilder(source).fail(
                    f"a form longer than {MAX_LINE_CHARS:,} characters (the bound on one "
                    "operation)", start_line)
    if form or in_string or closers:
        raise OpBuilder(source).fail("the file ends inside an unfinished form", start_line or None)


def read_edn(lines: Iterable[str], source: str | None = None) -> Iterator[Op]:
    builder = OpBuilder(source)
    batch: list[tuple[str, int]] = []

    def decode(batch: list[tuple[str, int]]) -> Iterator[Op]:
        """Forms the simple reader left over, decoded by edn-format in one call."""
        try:
            values = edn_format().loads_all(" ".join(text for text, _ in batch))
            if len(values) != len(batch):
                raise ValueError("form count mismatch")
        except Exception:
            values = []
            for text, number in batch:  # find the line at fault
                try:
                    values.append(edn_format().loads(text))
                except Exception as e:
                    raise builder.fail(f"not valid EDN: {e}", number) from None
        for value, (_, number) in zip(values, batch, strict=True):
            if not isinstance(value, Mapping):
                raise builder.fail(f"an op must be a map, got {shown(plain(value))}", number)
            yield builder.build(plain(value), number)

    for text, number in split_forms(lines, source):
        check_value_text(text, source, number)
        if not batch:
            try:
                value = edn_fast.loads(text)
            except edn_fast.NotSimple:
                pass
            else:
                if not isinstance(value, dict):
                    raise builder.fail(f"an op must be a map, got {shown(value)}", number)
                yield builder.build(value, number)
                continue
        batch.append((text, number))  # and every form after it, to keep the order
        if len(batch) >= _BATCH:
            yield from decode(batch)
            batch = []
    if batch:
        yield from decode(batch)


def edn_value(text: str) -> Any:
    """One EDN value as plain Python, with fast paths for the common scalars."""
    if text == "nil":
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return edn_fast.loads(text)
    except edn_fast.NotSimple:
        return plain(edn_format().loads(text))
