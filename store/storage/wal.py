"""The write-ahead log: segment files, the writer, and replay with torn-tail repair.

Segments are named ``%016x-%016x.wal`` (sequence number, the log index they start
at), like etcd's. Each one is created atomically with a first save holding its
SegmentHeader, the current HardState and references to the retained snapshot
files, so dropping older segments loses nothing still needed.

The writer then preallocates the segment (posix_fallocate, zeros up to the segment
size) so that an append does not change the file's size and os.fdatasync suffices:
it need not commit a size change to the file system's journal each time. Replay
reads the zeros after the last record as the end of the log, and the writer
continues right after that record. Where preallocation fails (a file system
without it), the segment grows with each append and is synced with os.fsync.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from store.raft.types import Entry, HardState
from store.storage.errors import StorageError
from store.storage.fsutil import fsync_dir, write_all, write_atomically
from store.storage.logshape import LogError, LogShape
from store.storage.records import (
    Batch,
    Record,
    SegmentHeader,
    SnapshotMark,
    nonzero_end,
    scan,
)

log = logging.getLogger(__name__)

SUFFIX = ".wal"
UNKNOWN_TERM = (1 << 64) - 1  # SegmentHeader.prev_term when the term is not known


@dataclass(frozen=True, slots=True, order=True)
class SegmentName:
    seq: int
    first_index: int

    @property
    def file_name(self) -> str:
        return f"{self.seq:016x}-{self.first_index:016x}{SUFFIX}"

    @staticmethod
    def parse(name: str) -> SegmentName | None:
        if not name.endswith(SUFFIX) or len(name) != 33 + len(SUFFIX) or name[16] != "-":
            return None
        try:
            return SegmentName(int(name[:16], 16), int(name[17:33], 16))
        except ValueError:
            return None


def list_segments(wal_dir: Path) -> list[SegmentName]:
    """The segments in order; StorageError if their sequence numbers have a gap."""
    segments = sorted(
        s for s in (SegmentName.parse(p.name) for p in wal_dir.iterdir()) if s is not None
    )
    for a, b in itertools.pairwise(segments):
        if b.seq != a.seq + 1:
            raise StorageError(
                f"WAL segments {a.file_name} and {b.file_name} are not consecutive: "
                "a segment is missing",
                path=wal_dir,
            )
    return segments


@dataclass(slots=True)
class WalState:
    """What replay read back from the WAL."""

    segments: list[SegmentName]
    shape: LogShape
    entries: list[Entry]  # shape.start + 1 .. shape.last
    hard_state: HardState = field(default_factory=HardState)
    snapshot_refs: set[tuple[int, int]] = field(default_factory=set)  # (index, term)
    tail_end: int = 0  # where the last segment's records end: the writer continues there
    truncated: int = 0  # bytes of a torn tail cut off the last segment


def replay(wal_dir: Path, segments: Sequence[SegmentName]) -> WalState:
    """Read every segment in order. A torn tail of the last segment (damage with nothing
    valid after it) is cut off the file; any other damage raises StorageError. Zeros
    after the last record (the unused preallocated part) are the end, not damage."""
    state: WalState | None = None
    for k, seg in enumerate(segments):
        path = wal_dir / seg.file_name
        data = read_segment(path)
        result = scan(data, path)
        torn = 0
        if result.damage is not None:
            d = result.damage
            if k < len(segments) - 1:
                raise StorageError(
                    f"{d.reason}, and later segments exist", path=path, offset=d.offset
                )
            if d.valid_after is not None:
                raise StorageError(
                    f"{d.reason}, but a valid record follows at offset {d.valid_after}: "
                    "the log is corrupt",
                    path=path,
                    offset=d.offset,
                )
            if result.end == 0:
                raise StorageError(
                    f"{d.reason} in the segment's header (written atomically)",
                    path=path,
                    offset=d.offset,
                )
            # Cut at the last whole save; the writer preallocates the file again.
            _truncate(path, result.end)
            torn = nonzero_end(data, result.end) - result.end
            log.warning(
                "%s: %s at offset %d; cut off a torn tail of %d bytes",
                path,
                d.reason,
                d.offset,
                torn,
            )
        if not result.saves:
            raise StorageError("empty WAL segment", path=path)
        header = result.saves[0][0]
        if not isinstance(header, SegmentHeader) or (header.seq, header.first_index) != (
            seg.seq,
            seg.first_index,
        ):
            raise StorageError(f"segment header {header} does not match the name", path=path)
        prev_term = None if header.prev_term == UNKNOWN_TERM else header.prev_term
        if state is None:
            shape = LogShape(header.first_index - 1, prev_term, header.first_index - 1)
            state = WalState(list(segments), shape, [])
        elif header.first_index != state.shape.last + 1 or (
            prev_term is not None and state.shape.term_at(state.shape.last) not in (None, prev_term)
        ):
            raise StorageError(
                f"segment starts at index {header.first_index} term {header.prev_term}, "
                f"the log before it ends at {state.shape.last}",
                path=path,
            )
        for n, (save, offset) in enumerate(zip(result.saves, result.offsets, strict=True)):
            try:
                _apply(state, save[1:] if n == 0 else save)
            except LogError as e:
                raise StorageError(
                    f"save does not continue the log: {e}", path=path, offset=offset
                ) from None
        state.tail_end = result.end
        state.truncated = torn
    if state is None:
        raise StorageError("no WAL segments", path=wal_dir)
    return state


def read_segment(path: Path) -> bytes:
    """A segment's content up to the end of its last data region: the preallocated part
    never written after it is a hole (all zeros), not worth reading."""
    with path.open("rb") as f:
        end = _data_end(f.fileno())
        f.seek(0)  # the lseeks moved the file position
        return f.read(end)


def _data_end(fd: int) -> int:
    """Where the file's last data region ends, per SEEK_DATA / SEEK_HOLE; a file system
    may report zeros as data, never data as a hole. The file's size if it cannot tell."""
    size = os.fstat(fd).st_size
    end = pos = 0
    try:
        while pos < size:
            pos = os.lseek(fd, pos, os.SEEK_DATA)
            end = pos = os.lseek(fd, pos, os.SEEK_HOLE)
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: no data after pos
            return size
    return end


def _apply(state: WalState, records: Sequence[Record]) -> None:
    run: list[Entry] = []
    for r in records:
        if isinstance(r, Entry):
            run.append(r)
            continue
        if run:
            _append(state, run)
            run = []
        if isinstance(r, HardState):
            state.hard_state = r
        elif isinstance(r, SnapshotMark):
            state.snapshot_refs.add((r.index, r.term))
            if r.restart:
                state.shape.restart(r.index, r.term)
                state.entries.clear()
        else:
            raise LogError(f"unexpected {r} inside a segment")
    if run:
        _append(state, run)


def _append(state: WalState, entries: list[Entry]) -> None:
    shape = state.shape
    start = shape.start
    shape.append(entries)
    if shape.start != start:
        state.entries[:] = entries
    else:
        del state.entries[entries[0].index - start - 1 :]
        state.entries.extend(entries)


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class WalStats:
    saves: int = 0
    fsyncs: int = 0  # fsyncs and fdatasyncs of WAL segments and of the WAL directory
    bytes: int = 0
    segments_created: int = 0
    segments_dropped: int = 0
    unpreallocated: int = 0  # segments opened whose preallocation failed


class WalWriter:
    """Appends saves to the last segment: one write and one fdatasync each (fsync if
    the segment could not be preallocated)."""

    def __init__(
        self,
        wal_dir: Path,
        segments: list[SegmentName],
        end: int,
        shape: LogShape,
        hard_state: HardState,
        segment_bytes: int,
        preallocate_bytes: int,
    ) -> None:
        self.wal_dir = wal_dir
        self.segments = segments
        self.shape = shape
        self.hard_state = hard_state
        self.segment_bytes = segment_bytes
        self.preallocate_bytes = preallocate_bytes  # 0: never preallocate
        self.snapshot_refs: list[tuple[int, int]] = []  # retained snapshots, for headers
        self.stats = WalStats()
        self._end = end  # where the next save goes: just after the last record
        self._fd: int | None = None
        self._datasync = False  # the segment is preallocated: fdatasync suffices
        self._failed: BaseException | None = None
        self._open(segments[-1])

    @classmethod
    def create(cls, wal_dir: Path, segment_bytes: int, preallocate_bytes: int) -> WalWriter:
        """Start a new WAL: segment 0 at index 1."""
        first = SegmentName(0, 1)
        end = _create_segment(wal_dir, first, 0, HardState(), [])
        return cls(wal_dir, [first], end, LogShape(), HardState(), segment_bytes, preallocate_bytes)

    @property
    def tail(self) -> Path:
        return self.wal_dir / self.segments[-1].file_name

    def append(self, batch: bytearray, shape: LogShape, hard_state: HardState | None) -> None:
        """Write ``batch`` (already checked against ``shape``) and sync it; then the log
        has that shape. Starts a new segment first if the current one is full."""
        if self._failed is not None:
            raise StorageError(f"an earlier write failed ({self._failed}); restart the node")
        try:
            if self._end >= self.segment_bytes:
                self._rotate()
            assert self._fd is not None, "append after close"
            write_all(self._fd, batch)
            if self._datasync:
                # This also commits a size change, should a save run past the
                # preallocated part; it just costs more then.
                os.fdatasync(self._fd)
            else:
                os.fsync(self._fd)
        except OSError as e:
            # What reached the disk is unknown (and a failed fsync may have dropped the
            # pages): only a restart, which replays and repairs the tail, is safe.
            self._failed = e
            raise StorageError(f"WAL write failed: {e}; restart the node", path=self.tail) from e
        self._end += len(batch)
        self.shape = shape
        if hard_state is not None:
            self.hard_state = hard_state
        self.stats.saves += 1
        self.stats.fsyncs += 1
        self.stats.bytes += len(batch)

    def drop_through(self, index: int) -> list[Path]:
        """Delete the segments (never the last) whose entries are all at or below ``index``."""
        removed = []
        while len(self.segments) > 1 and self.segments[1].first_index - 1 <= index:
            path = self.wal_dir / self.segments.pop(0).file_name
            path.unlink()
            removed.append(path)
        if removed:
            fsync_dir(self.wal_dir)
            self.stats.fsyncs += 1
            self.stats.segments_dropped += len(removed)
        return removed

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _rotate(self) -> None:
        last = self.shape.last
        term = self.shape.term_at(last)
        name = SegmentName(self.segments[-1].seq + 1, last + 1)
        end = _create_segment(
            self.wal_dir,
            name,
            UNKNOWN_TERM if term is None else term,
            self.hard_state,
            self.snapshot_refs,
        )
        self.stats.fsyncs += 2
        self.stats.segments_created += 1
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self.segments.append(name)
        self._end = end
        self._open(name)

    def _open(self, name: SegmentName) -> None:
        """Open a segment to write at ``self._end``, preallocating it first."""
        path = self.wal_dir / name.file_name
        fd = os.open(path, os.O_WRONLY)
        try:
            self._datasync = self._preallocate(fd, path)
            os.lseek(fd, self._end, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _preallocate(self, fd: int, path: Path) -> bool:
        """Allocate the segment up to ``preallocate_bytes`` (a no-op if it already is);
        whether that worked, so that fdatasync suffices for an append."""
        if self.preallocate_bytes <= 0:
            return False
        size = os.fstat(fd).st_size
        try:
            os.posix_fallocate(fd, 0, self.preallocate_bytes)
        except OSError as e:
            self.stats.unpreallocated += 1
            log.warning("%s: cannot preallocate (%s); appending with fsync", path, e)
            return False
        if os.fstat(fd).st_size != size:
            os.fsync(fd)  # the new size must be durable before fdatasync is relied on
            self.stats.fsyncs += 1
        return True


def _create_segment(
    wal_dir: Path,
    name: SegmentName,
    prev_term: int,
    hard_state: HardState,
    snapshot_refs: Sequence[tuple[int, int]],
) -> int:
    batch = Batch()
    batch.segment(SegmentHeader(name.seq, name.first_index, prev_term))
    batch.state(hard_state)
    for index, term in snapshot_refs:
        batch.snapshot(SnapshotMark(index, term))
    data = batch.finish()
    write_atomically(wal_dir / name.file_name, [data])
    return len(data)
