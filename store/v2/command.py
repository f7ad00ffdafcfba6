"""The commands the v2 store applies, and their compact encoding in the Raft log.

Times are UNIX seconds as floats (the store works at microsecond precision).
``expiration`` is absolute, computed by the proposer from the TTL; ``time`` is
the proposer's wall clock: the store uses it as "now" when it computes the TTLs
it reports and, for "sync", as the cutoff for expiring keys, so that every
replica applies the same command to the same result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

OPS = frozenset({"set", "create", "update", "cas", "delete", "cad", "post", "sync"})


@dataclass(frozen=True, slots=True)
class Command:
    """One v2 write, in the terms of etcd's store calls.

    set: Set (create or replace); create: Create (prevExist=false); update:
    Update (prevExist=true); cas: CompareAndSwap; delete: Delete; cad:
    CompareAndDelete; post: Create with an in-order key under ``path``; sync:
    DeleteExpiredKeys(``time``). ``prev_value == ""`` and ``prev_index == 0``
    mean "do not compare", as in etcd.
    """

    op: str
    path: str = "/"
    value: str = ""
    dir: bool = False
    prev_value: str = ""
    prev_index: int = 0
    prev_exist: bool | None = None
    recursive: bool = False
    expiration: float | None = None
    refresh: bool = False
    time: float = 0.0
    id: int = 0


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads
_new = object.__new__
# Each field's slot setter: building a frozen dataclass through __init__ costs
# twice as much, and decode is on every replica's apply path.
_SETTERS = tuple(getattr(Command, name).__set__ for name in Command.__slots__)


def encode(cmd: Command, id: int | None = None) -> bytes:
    """A JSON array of the fields in declaration order; ``id``, if given, is written
    in place of ``cmd.id`` (the proposer's, without copying the command)."""
    return _dumps(
        [
            cmd.op,
            cmd.path,
            cmd.value,
            cmd.dir,
            cmd.prev_value,
            cmd.prev_index,
            cmd.prev_exist,
            cmd.recursive,
            cmd.expiration,
            cmd.refresh,
            cmd.time,
            cmd.id if id is None else id,
        ]
    ).encode()


def decode(data: bytes) -> Command:
    """The inverse of :func:`encode`; raises ValueError or TypeError on foreign bytes."""
    fields = _loads(data.decode())
    if type(fields) is not list or len(fields) != len(_SETTERS):
        raise ValueError("not an encoded v2 command")
    cmd = _new(Command)
    for setter, value in zip(_SETTERS, fields, strict=True):
        setter(cmd, value)
    return cmd


def sync(now: float) -> Command:
    """The command a leader proposes to expire the keys whose time has come."""
    return Command("sync", time=now)
