"""WAL records: their framing, the codecs of what they hold, and the scan of a segment.

A record is ``[u32 length][u32 crc][u8 type][payload]``, little-endian: ``length``
is the payload's length and ``crc`` is zlib.crc32 of the type byte and the payload.
The high bit of the type (``COMMIT``) marks the last record of a save: replay
applies a save only once it has read that record, so a save is all or nothing.

Segments are preallocated, so the records are followed by zeros: the data ends
where the rest of the file is zero. No record can start with zeros (every one
has a payload and a non-zero type byte).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from store.raft.types import Entry, EntryType, HardState
from store.storage.errors import StorageError

COMMIT = 0x80
FRAME = struct.Struct("<II")  # length, crc; the type byte follows
FRAME_SIZE = FRAME.size + 1  # frame plus type byte


class Kind(IntEnum):
    SEGMENT = 1  # first record of a segment: seq, first index, term of the entry before
    ENTRY = 2
    STATE = 3  # a HardState
    RESTART = 4  # the log restarts after snapshot (index, term); also a SNAPSHOT_REF
    SNAPSHOT_REF = 5  # the snapshot file (index, term) is complete and may be loaded


# Each body starts with the type byte so the CRC covers it with one call.
_ENTRY = struct.Struct("<BQQB")  # type, term, index, entry type; the data follows
_STATE = struct.Struct("<BQQQ")  # type, term, vote, commit
_MARK = struct.Struct("<BQQ")  # type, index, term
_SEGMENT = struct.Struct("<BQQQ")  # type, seq, first index, previous term
_ENTRY_TYPES = {t.value: t for t in EntryType}
_KINDS = frozenset(k.value for k in Kind)


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    seq: int
    first_index: int  # the index the log continues at when the segment was started
    prev_term: int  # the term of the entry at first_index - 1


@dataclass(frozen=True, slots=True)
class SnapshotMark:
    """A snapshot file that may be loaded; ``restart``: the log restarts after it
    (a received snapshot the stored log did not match)."""

    index: int
    term: int
    restart: bool = False


Record = Entry | HardState | SegmentHeader | SnapshotMark


class Batch:
    """The records of one save, framed into one buffer; the last one gets COMMIT.

    Each record is framed when the next one arrives (or at ``finish``), because
    the COMMIT bit of the last record is part of what its CRC covers.
    """

    __slots__ = ("_buf", "_pending")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: tuple[bytes, bytes] | None = None

    def entries(self, entries: Iterable[Entry]) -> None:
        pack = _ENTRY.pack
        for e in entries:
            self._add(pack(Kind.ENTRY, e.term, e.index, e.type), e.data)

    def state(self, hs: HardState) -> None:
        self._add(_STATE.pack(Kind.STATE, hs.term, hs.vote, hs.commit))

    def snapshot(self, mark: SnapshotMark) -> None:
        kind = Kind.RESTART if mark.restart else Kind.SNAPSHOT_REF
        self._add(_MARK.pack(kind, mark.index, mark.term))

    def segment(self, header: SegmentHeader) -> None:
        h = header
        self._add(_SEGMENT.pack(Kind.SEGMENT, h.seq, h.first_index, h.prev_term))

    def finish(self) -> bytearray:
        """The framed records; empty if there were none."""
        if self._pending is not None:
            self._frame(*self._pending, commit=True)
            self._pending = None
        return self._buf

    def _add(self, head: bytes, data: bytes = b"") -> None:
        if self._pending is not None:
            self._frame(*self._pending, commit=False)
        self._pending = (head, data)

    def _frame(self, head: bytes, data: bytes, *, commit: bool) -> None:
        if commit:
            head = bytes((head[0] | COMMIT,)) + head[1:]
        crc = zlib.crc32(data, zlib.crc32(head))
        buf = self._buf
        buf += FRAME.pack(len(head) - 1 + len(data), crc)
        buf += head
        buf += data


@dataclass(frozen=True, slots=True)
class Damage:
    """Where and why a scan stopped before the end of the data."""

    offset: int
    reason: str
    valid_after: int | None  # offset of a valid record further on, if there is one


@dataclass(slots=True)
class SegmentScan:
    saves: list[list[Record]] = field(default_factory=list)  # complete saves, in order
    offsets: list[int] = field(default_factory=list)  # where each save starts
    end: int = 0  # just after the last complete save
    damage: Damage | None = None  # None: only zeros (or nothing) follow ``end``


def scan(data: bytes, path: Path) -> SegmentScan:
    """Decode the complete saves at the start of ``data`` and say why it stops there.

    The data ends at the first record boundary after which every byte is zero (the
    unused part of a preallocated segment), or at the end of ``data``.
    A record whose CRC holds but whose content is malformed cannot come from a torn
    write, so it raises StorageError at once; damage (short or failing records, or a
    save without its COMMIT record) is reported for the caller to judge.
    """
    out = SegmentScan()
    view = memoryview(data)
    size = len(data)
    unpack_frame, unpack_entry, crc32 = FRAME.unpack_from, _ENTRY.unpack_from, zlib.crc32
    entry_types = _ENTRY_TYPES
    pending: list[Record] = []
    off = 0
    while off < size:
        body = off + FRAME.size  # the type byte, then the payload
        reason = None
        if size - off < FRAME_SIZE:
            reason = "truncated record header"
        else:
            length, crc = unpack_frame(data, off)
            end = body + 1 + length
            if end > size:
                reason = f"record of {length} bytes runs past the end of the file"
            elif crc32(view[body:end]) != crc:
                reason = "record checksum mismatch"
        if reason is not None:
            if data.count(0, off) == size - off:
                break  # the zero-filled tail: the end of what was written
            out.damage = Damage(off, reason, find_valid_record(data, off + 1))
            return out
        kind = data[body]
        if kind & ~COMMIT == Kind.ENTRY and length >= _ENTRY.size - 1:
            _, term, index, etype = unpack_entry(data, body)
            if etype not in entry_types:
                raise StorageError(f"unknown entry type {etype}", path=path, offset=off)
            pending.append(Entry(term, index, entry_types[etype], data[body + _ENTRY.size : end]))
        else:
            pending.append(_decode(kind & ~COMMIT, view[body:end], path, off))
        if kind & COMMIT:
            out.saves.append(pending)
            out.offsets.append(out.end)
            pending = []
            out.end = end
        off = end
    if pending:
        out.damage = Damage(out.end, "the last save has no COMMIT record", None)
    return out


def find_valid_record(data: bytes, start: int) -> int | None:
    """The first offset at or after ``start`` where a well-framed record with a good CRC
    starts, or None. Slow (it tries every offset up to the zero-filled tail, where no
    record can start) but only runs on damaged files."""
    size = len(data)
    stop = nonzero_end(data, start)
    view = memoryview(data)
    unpack = FRAME.unpack_from
    # A record's type byte, FRAME.size bytes after its start, is not zero.
    for p in range(start, stop - FRAME_SIZE + 1):
        length, crc = unpack(data, p)
        end = p + FRAME_SIZE + length
        if end > size or data[p + FRAME.size] & ~COMMIT not in _KINDS:
            continue
        if zlib.crc32(view[p + FRAME.size : end]) == crc:
            return p
    return None


def nonzero_end(data: bytes, start: int = 0) -> int:
    """The offset just after the last non-zero byte at or after ``start`` (``start`` if
    there is none): where the zero-filled tail begins."""
    end = len(data)
    step = 1 << 16
    while end > start:
        lo = max(start, end - step)
        if data.count(0, lo, end) != end - lo:
            return lo + len(data[lo:end].rstrip(b"\0"))
        end = lo
    return start


def _decode(kind: int, body: memoryview, path: Path, off: int) -> Record:
    try:
        if kind == Kind.ENTRY:
            _, term, index, etype = _ENTRY.unpack_from(body)
            return Entry(term, index, _ENTRY_TYPES[etype], bytes(body[_ENTRY.size :]))
        if kind == Kind.STATE:
            _, term, vote, commit = _STATE.unpack(body)
            return HardState(term, vote, commit)
        if kind in (Kind.RESTART, Kind.SNAPSHOT_REF):
            _, index, term = _MARK.unpack(body)
            return SnapshotMark(index, term, restart=kind == Kind.RESTART)
        if kind == Kind.SEGMENT:
            _, seq, first, prev_term = _SEGMENT.unpack(body)
            return SegmentHeader(seq, first, prev_term)
    except (struct.error, KeyError) as e:
        raise StorageError(
            f"malformed {Kind(kind).name} record with a valid checksum ({e})",
            path=path,
            offset=off,
        ) from None
    raise StorageError(f"unknown record type {kind}", path=path, offset=off)


def encode_save(
    entries: Sequence[Entry],
    hard_state: HardState | None,
    mark: SnapshotMark | None = None,
) -> Batch:
    """A save's batch: the received snapshot's mark, then the entries, then the state."""
    batch = Batch()
    if mark is not None:
        batch.snapshot(mark)
    batch.entries(entries)
    if hard_state is not None:
        batch.state(hard_state)
    return batch
