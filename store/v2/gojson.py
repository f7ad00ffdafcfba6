"""JSON text exactly as Go's encoding/json writes it.

Go escapes ``<``, ``>``, ``&``, U+2028 and U+2029 (HTML-safe output) and writes
control characters other than \\n, \\r, \\t as ``\\u00XX``; everything else,
non-ASCII included, is written as is. Times are RFC 3339 with nanoseconds and
the trailing zeros of the fraction dropped (Go's RFC3339Nano).
"""

from __future__ import annotations

import re
import time
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # C, no ASCII escaping

_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\&<>\u2028\u2029]')
_ESCAPES: dict[str, str] = {chr(i): f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update(
    {
        '"': '\\"',
        "\\": "\\\\",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "&": "\\u0026",
        "<": "\\u003c",
        ">": "\\u003e",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


_HTML = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
         ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _escape(m: re.Match[str]) -> str:
    return _ESCAPES[m.group()]


def quote(s: str) -> str:
    """``s`` as a Go JSON string literal, quotes included."""
    out = encode_basestring(s)
    # Python writes \b and \f where Go writes \u0008 and \u000c: rare, done by hand.
    if "\\" in out and ("\b" in s or "\f" in s):
        return '"' + _NEEDS_ESCAPE.sub(_escape, s) + '"'
    for ch, esc in _HTML:
        if ch in out:
            out = out.replace(ch, esc)
    return out


def rfc3339(us: int) -> str:
    """A UTC time given in microseconds since the epoch, as Go's RFC3339Nano."""
    secs, frac = divmod(us, 1_000_000)
    t = time.gmtime(secs)
    head = (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    )
    if frac:
        return head + "." + f"{frac:06d}".rstrip("0") + "Z"
    return head + "Z"
