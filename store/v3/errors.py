"""etcd's v3 errors as its JSON gateway answers them: {"error","message","code"}.

``code`` is the gRPC status code; ``status`` the gateway's HTTP status for it.
An error found while the gateway decodes the request (``from_gateway``) is
written with a Content-Length; one the server returns is streamed (chunked,
with a gRPC trailer), as grpc-gateway does.
"""

from __future__ import annotations

from store.v2.gojson import quote

INVALID_ARGUMENT = 3
NOT_FOUND = 5
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
OUT_OF_RANGE = 11
UNAVAILABLE = 14

# grpc-gateway v1's HTTPStatusFromCode, for the codes etcd's KV answers.
_HTTP = {
    INVALID_ARGUMENT: 400,
    NOT_FOUND: 404,
    RESOURCE_EXHAUSTED: 429,
    FAILED_PRECONDITION: 400,
    OUT_OF_RANGE: 400,
    UNAVAILABLE: 503,
}


class V3Error(Exception):
    def __init__(self, code: int, message: str, *, from_gateway: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.from_gateway = from_gateway

    @property
    def status(self) -> int:
        return _HTTP.get(self.code, 500)

    def to_json(self) -> bytes:
        m = quote(self.message)
        return b'{"error":%s,"message":%s,"code":%d}' % (m.encode(), m.encode(), self.code)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, V3Error)
            and (self.code, self.message, self.from_gateway)
            == (other.code, other.message, other.from_gateway)
        )

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"V3Error({self.code}, {self.message!r})"


def invalid(message: str) -> V3Error:
    """A request the gateway could not decode (bad JSON, base64, field)."""
    return V3Error(INVALID_ARGUMENT, message, from_gateway=True)


def empty_key() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: key is not provided")


def key_not_found() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: key not found")  # etcd 3.4's code, not 5


def value_provided() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: value is provided")


def lease_provided() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: lease is provided")


def lease_not_found() -> V3Error:
    return V3Error(NOT_FOUND, "etcdserver: requested lease not found")


def too_many_ops() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: too many operations in txn request")


def duplicate_key() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")


def compacted() -> V3Error:
    return V3Error(OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")


def future_rev() -> V3Error:
    return V3Error(OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")


def too_large() -> V3Error:
    return V3Error(INVALID_ARGUMENT, "etcdserver: request is too large")


def no_leader() -> V3Error:
    return V3Error(UNAVAILABLE, "etcdserver: no leader")


def timed_out() -> V3Error:
    return V3Error(UNAVAILABLE, "etcdserver: request timed out")


def leader_changed() -> V3Error:
    return V3Error(UNAVAILABLE, "etcdserver: leader changed")
