"""The write-ahead log: segment files, the writer, and replay with torn-tail repair.

Segments are named ``%016x-%016x.wal`` (sequence number, the log index they start
at), like etcd's. Each one is created atomically with a first save holding its
SegmentHeader, the current HardState and references to the retained snapshot
files, so dropping older segments loses nothing still needed.
"""

from __future__ import annotations

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
from store.storage.records import Batch, Record, SegmentHeader, SnapshotMark, scan

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
    tail_size: int = 0  # bytes in the last segment (after any repair)
    truncated: int = 0  # bytes cut off a torn tail


def replay(wal_dir: Path, segments: Sequence[SegmentName]) -> WalState:
    """Read every segment in order. A torn tail of the last segment (damage with nothing
    valid after it) is cut off the file; any other damage raises StorageError."""
    state: WalState | None = None
    for k, seg in enumerate(segments):
        path = wal_dir / seg.file_name
        data = path.read_bytes()
        result = scan(data, path)
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
            _truncate(path, result.end)
            log.warning(
                "%s: %s at offset %d; cut off a torn tail of %d bytes",
                path,
                d.reason,
                d.offset,
                len(data) - result.end,
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
        state.tail_size = result.end
        state.truncated = len(data) - result.end
    if state is None:
        raise StorageError("no WAL segments", path=wal_dir)
    return state


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
    fsyncs: int = 0  # of WAL segments and of the WAL directory (not snapshot files)
    bytes: int = 0
    segments_created: int = 0
    segments_dropped: int = 0


class WalWriter:
    """Appends saves to the last segment: one write and one fsync each."""

    def __init__(
        self,
        wal_dir: Path,
        segments: list[SegmentName],
        size: int,
        shape: LogShape,
        hard_state: HardState,
        segment_bytes: int,
    ) -> None:
        self.wal_dir = wal_dir
        self.segments = segments
        self.shape = shape
        self.hard_state = hard_state
        self.segment_bytes = segment_bytes
        self.snapshot_refs: list[tuple[int, int]] = []  # retained snapshots, for headers
        self.stats = WalStats()
        self._size = size
        self._fd: int | None = self._open(segments[-1])
        self._failed: BaseException | None = None

    @classmethod
    def create(cls, wal_dir: Path, segment_bytes: int) -> WalWriter:
        """Start a new WAL: segment 0 at index 1."""
        first = SegmentName(0, 1)
        size = _create_segment(wal_dir, first, 0, HardState(), [])
        return cls(wal_dir, [first], size, LogShape(), HardState(), segment_bytes)

    @property
    def tail(self) -> Path:
        return self.wal_dir / self.segments[-1].file_name

    def append(self, batch: bytearray, shape: LogShape, hard_state: HardState | None) -> None:
        """Write ``batch`` (already checked against ``shape``) and fsync it; then the log
        has that shape. Starts a new segment first if the current one is full."""
        if self._failed is not None:
            raise StorageError(f"an earlier write failed ({self._failed}); restart the node")
        try:
            if self._size >= self.segment_bytes:
                self._rotate()
            assert self._fd is not None, "append after close"
            write_all(self._fd, batch)
            os.fsync(self._fd)
        except OSError as e:
            # What reached the disk is unknown (and a failed fsync may have dropped the
            # pages): only a restart, which replays and repairs the tail, is safe.
            self._failed = e
            raise StorageError(f"WAL write failed: {e}; restart the node", path=self.tail) from e
        self._size += len(batch)
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
        size = _create_segment(
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
        self._fd = self._open(name)
        self._size = size

    def _open(self, name: SegmentName) -> int:
        return os.open(self.wal_dir / name.file_name, os.O_WRONLY | os.O_APPEND)


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
