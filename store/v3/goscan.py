"""Go's encoding/json scanner, for its syntax error messages.

The gateway reads one JSON value from the body with a json.Decoder: text after
that value is ignored, a body cut short is "unexpected EOF", and a syntax error
reads "invalid character 'x' looking for beginning of value" and so on. This
finds the end of the first value, or the message Go would give.
"""

from __future__ import annotations

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"


class GoSyntaxError(ValueError):
    pass


def _quote_char(c: int) -> str:
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    ch = chr(c)
    if ch.isprintable():
        return f"'{ch}'"
    if c < 0x80:
        esc = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}
        return "'" + esc.get(c, f"\\x{c:02x}") + "'"
    return f"'\\u{c:04x}'"


def _err(c: int, context: str) -> GoSyntaxError:
    return GoSyntaxError(f"invalid character {_quote_char(c)} {context}")


def first_value_end(data: bytes) -> int | None:
    """Where the first JSON value ends (None: the body is only whitespace).

    Raises GoSyntaxError with Go's message for a syntax error or a cut-off value.
    """
    n = len(data)
    i = 0
    stack: list[str] = []  # "obj" expecting key, "objval", "arr"

    def skip(i: int) -> int:
        while i < n and data[i] in _SPACE:
            i += 1
        return i

    i = skip(i)
    if i == n:
        return None
    while True:
        # a value starts at i
        if i >= n:
            raise GoSyntaxError("unexpected EOF")
        c = data[i]
        if c == 0x7B:  # {
            i = skip(i + 1)
            if i >= n:
                raise GoSyntaxError("unexpected EOF")
            if data[i] == 0x7D:
                i += 1
            else:
                if data[i] != 0x22:
                    raise _err(data[i], "looking for beginning of object key string")
                i = _string(data, i)
                i = _after_key(data, skip(i))
                stack.append("obj")
                i = skip(i)
                continue
        elif c == 0x5B:  # [
            i = skip(i + 1)
            if i >= n:
                raise GoSyntaxError("unexpected EOF")
            if data[i] == 0x5D:
                i += 1
            else:
                stack.append("arr")
                continue
        elif c == 0x22:
            i = _string(data, i)
        elif c == 0x2D or c in _DIGITS:
            i = _number(data, i)
        elif c in b"tfn":
            i = _literal(data, i)
        else:
            raise _err(c, "looking for beginning of value")
        # a value ended at i
        while True:
            if not stack:
                return i
            i = skip(i)
            if i >= n:
                raise GoSyntaxError("unexpected EOF")
            c = data[i]
            if stack[-1] == "obj":
                if c == 0x2C:
                    i = skip(i + 1)
                    if i >= n:
                        raise GoSyntaxError("unexpected EOF")
                    if data[i] != 0x22:
                        raise _err(data[i], "looking for beginning of object key string")
                    i = _string(data, i)
                    i = _after_key(data, skip(i))
                    i = skip(i)
                    break
                if c == 0x7D:
                    stack.pop()
                    i += 1
                    continue
                raise _err(c, "after object key:value pair")
            if c == 0x2C:
                i = skip(i + 1)
                break
            if c == 0x5D:
                stack.pop()
                i += 1
                continue
            raise _err(c, "after array element")


def _after_key(data: bytes, i: int) -> int:
    if i >= len(data):
        raise GoSyntaxError("unexpected EOF")
    if data[i] != 0x3A:
        raise _err(data[i], "after object key")
    return i + 1


def _string(data: bytes, i: int) -> int:
    n = len(data)
    i += 1
    while i < n:
        c = data[i]
        if c == 0x22:
            return i + 1
        if c == 0x5C:
            i += 1
            if i >= n:
                break
            e = data[i]
            if e == 0x75:
                for _ in range(4):
                    i += 1
                    if i >= n:
                        raise GoSyntaxError("unexpected EOF")
                    if data[i] not in _HEX:
                        raise _err(data[i], "in \\u hexadecimal character escape")
            elif e not in b'bfnrt\\/"':
                raise _err(e, "in string escape code")
        elif c < 0x20:
            raise _err(c, "in string literal")
        i += 1
    raise GoSyntaxError("unexpected EOF")


def _number(data: bytes, i: int) -> int:
    n = len(data)

    def at(j: int) -> int:
        return data[j] if j < n else -1

    if at(i) == 0x2D:
        i += 1
        if at(i) == -1:
            raise GoSyntaxError("unexpected EOF")
        if at(i) not in _DIGITS:
            raise _err(at(i), "in numeric literal")
    if at(i) == 0x30:
        i += 1
    else:
        while at(i) != -1 and at(i) in _DIGITS:
            i += 1
    if at(i) == 0x2E:
        i += 1
        if at(i) == -1:
            raise GoSyntaxError("unexpected EOF")
        if at(i) not in _DIGITS:
            raise _err(at(i), "after decimal point in numeric literal")
        while at(i) != -1 and at(i) in _DIGITS:
            i += 1
    if at(i) in (0x65, 0x45):
        i += 1
        if at(i) in (0x2B, 0x2D):
            i += 1
        if at(i) == -1:
            raise GoSyntaxError("unexpected EOF")
        if at(i) not in _DIGITS:
            raise _err(at(i), "in exponent of numeric literal")
        while at(i) != -1 and at(i) in _DIGITS:
            i += 1
    return i


def _literal(data: bytes, i: int) -> int:
    word = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[data[i]]
    for k in range(1, len(word)):
        j = i + k
        if j >= len(data):
            raise GoSyntaxError("unexpected EOF")
        if data[j] != word[k]:
            raise _err(data[j], f"in literal {word.decode()} (expecting {_quote_char(word[k])})")
    return i + len(word)
