"""etcd's v2 errors: codes, messages, HTTP statuses and the JSON body.

Codes, messages and the status mapping are etcd's ``v2error`` package. A form
error carries index 0; a store error carries the store index at the time.
"""

from __future__ import annotations

from store.v2.gojson import quote

KEY_NOT_FOUND = 100
TEST_FAILED = 101
NOT_FILE = 102
NOT_DIR = 104
NODE_EXIST = 105
ROOT_READ_ONLY = 107
DIR_NOT_EMPTY = 108
UNAUTHORIZED = 110

PREV_VALUE_REQUIRED = 201
TTL_NAN = 202
INDEX_NAN = 203
INVALID_FIELD = 209
INVALID_FORM = 210
REFRESH_VALUE = 211
REFRESH_TTL_REQUIRED = 212

RAFT_INTERNAL = 300
LEADER_ELECT = 301

WATCHER_CLEARED = 400
EVENT_INDEX_CLEARED = 401

MESSAGES: dict[int, str] = {
    KEY_NOT_FOUND: "Key not found",
    TEST_FAILED: "Compare failed",
    NOT_FILE: "Not a file",
    103: "Reached the max number of peers in the cluster",
    NOT_DIR: "Not a directory",
    NODE_EXIST: "Key already exists",
    106: "The prefix of given key is a keyword in etcd",
    ROOT_READ_ONLY: "Root is read only",
    DIR_NOT_EMPTY: "Directory not empty",
    109: "Peer address has existed",
    UNAUTHORIZED: "The request requires user authentication",
    200: "Value is Required in POST form",
    PREV_VALUE_REQUIRED: "PrevValue is Required in POST form",
    TTL_NAN: "The given TTL in POST form is not a number",
    INDEX_NAN: "The given index in POST form is not a number",
    204: "Value or TTL is required in POST form",
    205: "The given timeout in POST form is not a number",
    206: "Name is required in POST form",
    207: "Index or value is required",
    208: "Index and value cannot both be specified",
    INVALID_FIELD: "Invalid field",
    INVALID_FORM: "Invalid POST form",
    REFRESH_VALUE: "Value provided on refresh",
    REFRESH_TTL_REQUIRED: "A TTL must be provided on refresh",
    RAFT_INTERNAL: "Raft Internal Error",
    LEADER_ELECT: "During Leader Election",
    WATCHER_CLEARED: "watcher is cleared due to etcd recovery",
    EVENT_INDEX_CLEARED: "The event in requested index is outdated and cleared",
    402: "Standby Internal Error",
    403: "Invalid active size",
    404: "Standby remove delay",
    500: "Client Internal Error",
}

# Every code not listed answers 400 Bad Request.
STATUS: dict[int, int] = {
    KEY_NOT_FOUND: 404,
    NOT_FILE: 403,
    DIR_NOT_EMPTY: 403,
    UNAUTHORIZED: 401,
    TEST_FAILED: 412,
    NODE_EXIST: 412,
    RAFT_INTERNAL: 500,
    LEADER_ELECT: 500,
}


class EtcdError(Exception):
    """An etcd v2 error, as the store returns it and the HTTP layer writes it."""

    def __init__(self, code: int, cause: str = "", index: int = 0) -> None:
        super().__init__(code, cause, index)
        self.code = code
        self.message = MESSAGES.get(code, "")
        self.cause = cause
        self.index = index

    @classmethod
    def raft_internal(cls, cause: str, index: int = 0) -> EtcdError:
        """300 Raft Internal Error: a timeout, no leader, a lost leadership."""
        return cls(RAFT_INTERNAL, cause, index)

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)

    def to_json(self) -> bytes:
        """etcd's body, without the trailing newline the HTTP layer adds."""
        cause = f'"cause":{quote(self.cause)},' if self.cause else ""
        return (
            f'{{"errorCode":{self.code},"message":{quote(self.message)},'
            f'{cause}"index":{self.index}}}'
        ).encode()

    def __str__(self) -> str:
        return f"{self.message} ({self.cause})"

    def __repr__(self) -> str:
        return f"EtcdError({self.code}, {self.cause!r}, index={self.index})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EtcdError):
            return NotImplemented
        return (self.code, self.cause, self.index) == (other.code, other.cause, other.index)

    def __hash__(self) -> int:
        return hash((self.code, self.cause, self.index))
