"""Whole HTTP responses as bytes, with etcd's headers in etcd's order.

Go writes the handler's headers sorted by name, then Date and Content-Length
(or Transfer-Encoding), then a sniffed Content-Type if the handler set none,
then Connection. Every answer of etcd's client port carries the CORS headers.
``tail`` is the request's Connection header line (usually empty); ``head``
drops the body of an answer to HEAD but keeps its Content-Length.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from html import escape

from store.v2.errors import INVALID_FORM, EtcdError
from store.v2.gojson import quote

CORS = (
    b"Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
    b"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
    b"Access-Control-Allow-Origin: *\r\n"
)
JSON = b"Content-Type: application/json\r\n"
TEXT = b"Content-Type: text/plain; charset=utf-8\r\n"
NOSNIFF = b"X-Content-Type-Options: nosniff\r\n"

REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_status_lines: dict[tuple[str, int], bytes] = {}


def status_line(version: str, code: int) -> bytes:
    line = _status_lines.get((version, code))
    if line is None:
        reason = REASONS.get(code, "Status")
        line = f"HTTP/{version} {code} {reason}\r\n".encode()
        _status_lines[(version, code)] = line
    return line


_date_second = -1
_date_line = b""


def date_line() -> bytes:
    """The Date header, formatted once a second."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        _date_second = now
    return _date_line


def _finish(parts: list[bytes], body: bytes, tail: bytes, head: bool) -> bytes:
    parts.append(date_line())
    parts.append(b"Content-Length: %d\r\n" % len(body))
    parts.append(tail)
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)


def cluster_line(cluster_id: str) -> bytes:
    return f"X-Etcd-Cluster-Id: {cluster_id}\r\n".encode()


def key_event(
    version: str,
    status: int,
    cluster: bytes,
    etcd_index: int,
    raft_index: int,
    raft_term: int,
    body: bytes,
    tail: bytes,
    head: bool,
    length: int | None = None,
) -> bytes:
    """A /v2/keys success: the event body, the etcd and raft indexes.

    With ``length``, only the head is returned, for a body of that length that
    the caller writes after it (a large body is not copied into the head)."""
    return b"%s%s%s%sX-Etcd-Index: %d\r\nX-Raft-Index: %d\r\nX-Raft-Term: %d\r\n%s" \
        b"Content-Length: %d\r\n%s\r\n%s" % (
            status_line(version, status),
            CORS,
            JSON,
            cluster,
            etcd_index,
            raft_index,
            raft_term,
            date_line(),
            len(body) if length is None else length,
            tail,
            b"" if head else body,
        )


def key_error(version: str, err: EtcdError, cluster: bytes, tail: bytes, head: bool) -> bytes:
    """An etcd error: only X-Etcd-Index, equal to the body's index."""
    body = err.to_json() + b"\n"
    return b"%s%s%s%sX-Etcd-Index: %d\r\n%sContent-Length: %d\r\n%s\r\n%s" % (
        status_line(version, err.status),
        CORS,
        JSON,
        cluster,
        err.index,
        date_line(),
        len(body),
        tail,
        b"" if head else body,
    )


def watch_head(
    version: str, cluster: bytes, etcd_index: int, raft_index: int, raft_term: int, tail: bytes
) -> bytes:
    """The headers of a watch answer; its events follow as chunks (HTTP/1.1)."""
    te = b"Transfer-Encoding: chunked\r\n" if version == "1.1" else b""
    return b"%s%s%s%sX-Etcd-Index: %d\r\nX-Raft-Index: %d\r\nX-Raft-Term: %d\r\n%s%s%s\r\n" % (
        status_line(version, 200),
        CORS,
        JSON,
        cluster,
        etcd_index,
        raft_index,
        raft_term,
        date_line(),
        tail,
        te,
    )


def json_ok(
    version: str, body: bytes, tail: bytes, head: bool, cluster: bytes = b"", status: int = 200
) -> bytes:
    """A handler-set JSON answer (stats, members, version)."""
    return _finish([status_line(version, status), CORS, JSON, cluster], body, tail, head)


def sniffed_text(version: str, status: int, body: bytes, tail: bytes, head: bool) -> bytes:
    """An answer whose handler set no Content-Type: Go sniffs text/plain after the rest."""
    return b"".join(
        (
            status_line(version, status),
            CORS,
            date_line(),
            b"Content-Length: %d\r\n" % len(body),
            TEXT,
            tail,
            b"\r\n",
            b"" if head else body,
        )
    )


def plain_error(
    version: str, status: int, message: str, tail: bytes, head: bool, allow: bytes = b""
) -> bytes:
    """Go's http.Error (404 page not found, 405 Method Not Allowed, 503 health)."""
    parts = [status_line(version, status), CORS]
    if allow:
        parts.append(b"Allow: %s\r\n" % allow)
    parts += [TEXT, NOSNIFF]
    return _finish(parts, message.encode() + b"\n", tail, head)


def not_found(version: str, tail: bytes, head: bool) -> bytes:
    return plain_error(version, 404, "404 page not found", tail, head)


def method_not_allowed(version: str, allow: bytes, tail: bytes, head: bool) -> bytes:
    return plain_error(version, 405, "Method Not Allowed", tail, head, allow)


def http_error_json(
    version: str, status: int, message: str, tail: bytes, head: bool, cluster: bytes = b""
) -> bytes:
    """etcd's httptypes.HTTPError: {"message": ...}."""
    body = b'{"message":%s}' % quote(message).encode()
    return _finish([status_line(version, status), CORS, JSON, cluster], body, tail, head)


def options(version: str, tail: bytes) -> bytes:
    """etcd's CORS handler answers every OPTIONS with the CORS headers alone."""
    return _finish([status_line(version, 200), CORS], b"", tail, False)


def redirect(version: str, location: str, method: str, tail: bytes) -> bytes:
    """Go's ServeMux sends a path that is not clean to its clean form."""
    loc = location.encode()
    parts = [status_line(version, 301), CORS]
    if method in ("GET", "HEAD"):
        parts.append(b"Content-Type: text/html; charset=utf-8\r\n")
        body = f'<a href="{escape(location)}">Moved Permanently</a>.\n\n'.encode()
    else:
        body = b""
    parts.append(b"Location: %s\r\n" % loc)
    return _finish(parts, body, tail, method == "HEAD")


def too_large(version: str, cluster: bytes) -> bytes:
    """413 for a body over the limit, with an etcd-style body; the connection closes."""
    err = EtcdError(INVALID_FORM, "http: request body too large")
    body = err.to_json() + b"\n"
    parts = [status_line(version, 413), CORS, JSON, cluster, b"X-Etcd-Index: 0\r\n"]
    return _finish(parts, body, b"Connection: close\r\n", False)


def bare(status: int) -> bytes:
    """What Go's server answers to a request it cannot parse, before any handler."""
    text = f"{status} {REASONS[status]}"
    return (
        f"HTTP/1.1 {text}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
        f"{text}"
    ).encode()


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def bad_chunk(cluster: bytes) -> bytes:
    """A chunked body that does not parse: etcd answers it as a bad form (210)."""
    err = EtcdError(INVALID_FORM, "invalid byte in chunk length")
    body = err.to_json() + b"\n"
    parts = [status_line("1.1", 400), CORS, JSON, cluster, b"X-Etcd-Index: 0\r\n"]
    return _finish(parts, body, b"Connection: close\r\n", False)


# Go's server refuses an HTTP/1.1 request without a Host header before any handler.
NO_HOST = (
    b"HTTP/1.1 400 Bad Request: missing required Host header\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"400 Bad Request: missing required Host header"
)

PROMETHEUS = b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"


def metrics(version: str, body: bytes, tail: bytes, head: bool) -> bytes:
    return _finish([status_line(version, 200), CORS, PROMETHEUS], body, tail, head)
