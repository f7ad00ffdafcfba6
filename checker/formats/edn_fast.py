"""A direct reader for the simple EDN forms histories are made of.

nil, booleans, integers, plain decimals, strings with the common escapes,
keywords, vectors, lists and maps with scalar keys: read without edn-format
(whose PLY lexer and parser are rebuilt for every call), giving the same plain
Python values as `plain(edn_format.loads(text))` (keywords become their names,
vectors and lists Python lists). Anything else raises `NotSimple`, and the
caller hands the form to edn-format.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'[\s,]*(?:([\[\](){}])|"((?:[^"\\]|\\.)*)"|([^\s,\[\](){}"]+))', re.S)
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?\d+(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+)")
_KEYWORD = re.compile(r":[A-Za-z*!_?<>=$%&][A-Za-z0-9*+!\-_?<>=.$%&]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_ESCAPE = re.compile(r"\\(.)", re.S)
_CLOSE = {"[": "]", "(": ")", "{": "}"}
_END = re.compile(r"[\s,]*")


class NotSimple(ValueError):
    """The form uses EDN this reader leaves to edn-format."""


def _unescape(match: re.Match[str]) -> str:
    try:
        return _ESCAPES[match.group(1)]
    except KeyError:
        raise NotSimple("escape") from None


def _atom(text: str) -> Any:
    if text == "nil":
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    first = text[0]
    if first == ":":
        if _KEYWORD.fullmatch(text):
            return text[1:]
        raise NotSimple(text)
    if first.isdigit() or first in "+-":
        if _INT.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            return float(text)
    raise NotSimple(text)


_SCALAR = r'(?:nil|true|false|[+-]?\d+(?:\.\d+)?|:[A-Za-z*!_?<>=$%&][\w*+!\-?<>=.$%&]*|"[^"\\]*")'
_PAIR = (r"[\s,]*(:[A-Za-z*!_?<>=$%&][\w*+!\-?<>=.$%&]*)[\s,]+("
         + _SCALAR + r'|\[[^\[\](){}"\\;#]*\])(?=[\s,}])')
_FLAT_MAP = re.compile(r"\{(?:" + _PAIR + r")*[\s,]*\}")
_PAIRS = re.compile(_PAIR)
_ITEMS = re.compile(rf"[\s,]*({_SCALAR})(?=[\s,]|$)")
_CACHE: dict[str, Any] = {}


def _scalar(text: str) -> Any:
    value = _CACHE.get(text)
    if value is None and text not in _CACHE:
        value = text[1:-1] if text[0] == '"' else _atom(text)
        if len(_CACHE) < 4096:
            _CACHE[text] = value
    return value


def _flat_map(text: str) -> dict[str, Any] | None:
    """A map of keywords to scalars and vectors of scalars, read by two regexes."""
    if _FLAT_MAP.fullmatch(text) is None:
        return None
    out: dict[str, Any] = {}
    for key, raw in _PAIRS.findall(text, 1):
        if raw[0] == "[":
            inner = raw[1:-1]
            items = _ITEMS.findall(inner)
            if "".join(items).replace(" ", "") != inner.replace(" ", "").replace(",", ""):
                raise NotSimple("vector")
            out[key[1:]] = [_scalar(item) for item in items]
        else:
            out[key[1:]] = _scalar(raw)
    return out


def loads(text: str) -> Any:
    """One simple EDN value as plain Python; NotSimple for anything else."""
    if text[:1] == "{":
        flat = _flat_map(text)
        if flat is not None:
            return flat
    tokens = _TOKEN.finditer(text)
    pos = 0
    stack: list[tuple[str, list[Any]]] = []
    result: Any = None
    done = False
    for m in tokens:
        if m.start() != pos or done:
            raise NotSimple("unexpected text")
        pos = m.end()
        bracket, string, atom = m.group(1), m.group(2), m.group(3)
        if bracket is not None:
            if bracket in _CLOSE:
                stack.append((_CLOSE[bracket], []))
                continue
            if not stack or stack[-1][0] != bracket:
                raise NotSimple("unbalanced")
            closer, items = stack.pop()
            if closer == "}":
                if len(items) % 2:
                    raise NotSimple("odd map")
                keys = items[0::2]
                if any(isinstance(k, list | dict) for k in keys):
                    raise NotSimple("compound key")
                value: Any = dict(zip(keys, items[1::2], strict=True))
            else:
                value = items
        elif string is not None:
            value = _ESCAPE.sub(_unescape, string) if "\\" in string else string
        else:
            if atom[0] in "#;\\^@`~'":
                raise NotSimple(atom)
            value = _atom(atom)
        if stack:
            stack[-1][1].append(value)
        else:
            result, done = value, True
    if not done or stack or _END.fullmatch(text, pos) is None:
        raise NotSimple("incomplete")
    return result
