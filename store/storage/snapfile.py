"""Snapshot files: ``%016x-%016x.snap`` (term, index), like etcd's.

Content: ``MAGIC``, ``<QQI`` index, term, voter count, ``<Q`` per voter, ``<Q`` data
length, the data, then ``<I`` zlib.crc32 of everything before it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from store.raft.types import Snapshot, SnapshotMeta
from store.storage.errors import StorageError
from store.storage.fsutil import write_atomically

MAGIC = b"SBSNAP\x00\x01"
SUFFIX = ".snap"
BROKEN_SUFFIX = ".broken"
_HEAD = struct.Struct("<8sQQI")
_LEN = struct.Struct("<Q")
_CRC = struct.Struct("<I")


@dataclass(frozen=True, slots=True, order=True)
class SnapFile:
    index: int
    term: int
    path: Path


def file_name(index: int, term: int) -> str:
    return f"{term:016x}-{index:016x}{SUFFIX}"


def parse_name(path: Path) -> tuple[int, int] | None:
    """(index, term) from a snapshot file's name, or None if it is not one."""
    name = path.name
    if not name.endswith(SUFFIX) or len(name) != 33 + len(SUFFIX):
        return None
    term, dash, index = name[:16], name[16], name[17:33]
    try:
        return (int(index, 16), int(term, 16)) if dash == "-" else None
    except ValueError:
        return None


def list_files(directory: Path) -> list[SnapFile]:
    """The snapshot files in ``directory``, oldest (lowest index) first."""
    found = []
    for p in directory.iterdir():
        parsed = parse_name(p)
        if parsed is not None:
            found.append(SnapFile(parsed[0], parsed[1], p))
    return sorted(found)


def encode(snapshot: Snapshot) -> list[bytes]:
    """The file content in parts (the data is not copied into a new buffer)."""
    m = snapshot.meta
    head = _HEAD.pack(MAGIC, m.index, m.term, len(m.voters))
    head += struct.pack(f"<{len(m.voters)}Q", *m.voters) + _LEN.pack(len(snapshot.data))
    crc = zlib.crc32(snapshot.data, zlib.crc32(head))
    return [head, snapshot.data, _CRC.pack(crc)]


def decode(data: bytes, path: Path) -> Snapshot:
    """Parse and verify a snapshot file's content; StorageError if it is damaged."""
    view = memoryview(data)
    try:
        magic, index, term, n = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise StorageError("not a snapshot file (bad magic)", path=path)
        off = _HEAD.size
        if off + 8 * n > len(data):
            raise StorageError(f"snapshot file header claims {n} voters", path=path)
        voters = struct.unpack_from(f"<{n}Q", data, off)
        off += 8 * n
        (length,) = _LEN.unpack_from(data, off)
        off += _LEN.size
        if off + length + _CRC.size != len(data):
            raise StorageError(
                f"snapshot file is {len(data)} bytes, its header says {off + length + 4}",
                path=path,
            )
        (crc,) = _CRC.unpack_from(data, off + length)
    except struct.error:
        raise StorageError("snapshot file is truncated", path=path) from None
    if zlib.crc32(view[: off + length]) != crc:
        raise StorageError("snapshot file checksum mismatch", path=path)
    if parse_name(path) not in (None, (index, term)):
        raise StorageError(f"snapshot file holds index {index} term {term}", path=path)
    return Snapshot(SnapshotMeta(index, term, tuple(voters)), bytes(view[off : off + length]))


def read(path: Path) -> Snapshot:
    return decode(path.read_bytes(), path)


def write(directory: Path, snapshot: Snapshot) -> Path:
    """Write atomically (temporary file, fsync, rename, fsync the directory)."""
    path = directory / file_name(snapshot.meta.index, snapshot.meta.term)
    write_atomically(path, encode(snapshot))
    return path


def set_aside(path: Path) -> Path:
    """Rename a damaged snapshot file so it is neither loaded nor counted again."""
    target = path.with_name(path.name + BROKEN_SUFFIX)
    path.replace(target)
    return target
