"""Small file-system helpers: directory fsync, atomic file writes, the data-dir lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from store.storage.errors import StorageError

TEMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make the directory's entries (creations, renames, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """One os.write, looping only if the kernel takes less than everything."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_atomically(path: Path, parts: Iterable[bytes | bytearray | memoryview]) -> None:
    """Write a file so that ``path`` holds either its old content or all the new one:
    a temporary file in the same directory, fsync, rename, fsync the directory."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        for part in parts:
            write_all(fd, part)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_temp_files(directory: Path) -> list[Path]:
    """Remove what an interrupted ``write_atomically`` left behind."""
    removed = []
    for p in directory.iterdir():
        if p.name.endswith(TEMP_SUFFIX) and p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each made durable in its parent."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        fsync_dir(d.parent)


class DirLock:
    """An exclusive flock on a file, so that two processes never share a data dir."""

    def __init__(self, path: Path) -> None:
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise StorageError(
                "the data directory is in use by another process", path=path
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the flock
            self._fd = None
