"""The counters behind /v2/stats/store, in etcd's field order."""

from __future__ import annotations

# Counted from the log, hence identical on every replica and kept in snapshots.
WRITE_FIELDS = (
    "setsSuccess",
    "setsFail",
    "deleteSuccess",
    "deleteFail",
    "updateSuccess",
    "updateFail",
    "createSuccess",
    "createFail",
    "compareAndSwapSuccess",
    "compareAndSwapFail",
    "compareAndDeleteSuccess",
    "compareAndDeleteFail",
    "expireCount",
)

# Which pair of counters each command op moves ("post" is a create).
OP_FIELDS: dict[str, tuple[int, int]] = {
    "set": (0, 1),
    "delete": (2, 3),
    "update": (4, 5),
    "create": (6, 7),
    "post": (6, 7),
    "cas": (8, 9),
    "cad": (10, 11),
}
EXPIRE = 12


class StoreStats:
    __slots__ = ("gets_fail", "gets_success", "writes")

    def __init__(self, writes: list[int] | None = None) -> None:
        self.gets_success = 0  # local reads: per node, not replicated
        self.gets_fail = 0
        self.writes = list(writes) if writes is not None else [0] * len(WRITE_FIELDS)

    def to_json(self, watchers: int) -> bytes:
        parts = [f'"getsSuccess":{self.gets_success}', f'"getsFail":{self.gets_fail}']
        parts += [f'"{name}":{n}' for name, n in zip(WRITE_FIELDS, self.writes, strict=True)]
        parts.append(f'"watchers":{watchers}')
        return ("{" + ",".join(parts) + "}").encode()
