"""The storage layer's one error type."""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """The data directory cannot be used as it is: corrupt, inconsistent, or locked.

    ``path`` and ``offset`` say where, when the problem is in one file.
    """

    def __init__(self, message: str, *, path: Path | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}" if offset is None else f"{path} at offset {offset}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset
