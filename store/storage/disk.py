"""DiskStorage: persists what the Raft core hands the driver in a Ready, and gives it back.

Layout, like etcd's data dir: ``member/wal/`` (WAL segments), ``member/snap/``
(snapshot files), plus ``member/meta.json`` and ``member/lock``.

Guarantees:

- ``save`` is one write and one fdatasync (plus a segment rotation now and then),
  and is all or nothing: after a crash, replay returns the state before the save
  or after it, never part of it. WAL segments are preallocated, so an append does
  not change the file's size; where that is impossible, the sync is an fsync.
- A torn tail of the last WAL segment is cut off on open; damage anywhere else
  (something valid after it, or in an older segment) raises StorageError.
- A snapshot file is loaded only once the WAL references it, so a crash between
  writing the file and the WAL record leaves the old state. If the newest snapshot
  is damaged, the previous one is used when the WAL still covers the gap.
- A received snapshot keeps the stored log after it only if that log holds the
  snapshot's last entry (Raft's rule); otherwise the log restarts after it.
- ``save_snapshot`` keeps the newest ``keep_snapshots`` files and drops the WAL
  segments that the previous snapshot covers, so one fallback is always possible.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from store.raft.types import Entry, HardState, Restored, Snapshot
from store.storage import snapfile
from store.storage.errors import StorageError
from store.storage.fsutil import DirLock, fsync_dir, make_dirs, remove_temp_files, write_atomically
from store.storage.records import Batch, SnapshotMark, encode_save
from store.storage.wal import WalState, WalStats, WalWriter, list_segments, replay

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 << 20
DEFAULT_KEEP_SNAPSHOTS = 3


@dataclass(frozen=True, slots=True)
class Layout:
    data_dir: Path
    wal_dir: Path | None = None  # etcd's --wal-dir: the WAL somewhere else

    @property
    def member(self) -> Path:
        return self.data_dir / "member"

    @property
    def wal(self) -> Path:
        return self.wal_dir if self.wal_dir is not None else self.member / "wal"

    @property
    def snap(self) -> Path:
        return self.member / "snap"

    @property
    def meta(self) -> Path:
        return self.member / "meta.json"

    @property
    def lock(self) -> Path:
        return self.member / "lock"


class DiskStorage:
    """The node's durable state. ``save`` and ``save_snapshot`` may come from different
    threads; they are serialised (a snapshot file is written outside the lock)."""

    def __init__(
        self,
        layout: Layout,
        wal: WalWriter,
        snapshots: list[tuple[int, int]],
        dir_lock: DirLock,
        keep_snapshots: int,
    ) -> None:
        self.layout = layout
        self._wal = wal
        self._snapshots = snapshots  # retained (index, term), oldest first
        self._dir_lock = dir_lock
        self._keep = keep_snapshots
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
        preallocate_bytes: int | None = None,
        wal_dir: Path | None = None,
    ) -> tuple[DiskStorage, Restored]:
        """Create the layout if new, else load the newest usable snapshot and replay the
        WAL after it (repairing a torn tail). Raises StorageError if that is impossible.

        WAL segments are preallocated to ``preallocate_bytes`` (default: segment_bytes;
        0: not at all, every append then grows the file and is synced with fsync).
        ``wal_dir`` puts the WAL segments there instead of ``member/wal``."""
        if segment_bytes < 1 or keep_snapshots < 1:
            raise ValueError("segment_bytes and keep_snapshots must be positive")
        if preallocate_bytes is None:
            preallocate_bytes = segment_bytes
        if preallocate_bytes < 0:
            raise ValueError("preallocate_bytes must not be negative")
        layout = Layout(Path(data_dir), None if wal_dir is None else Path(wal_dir))
        make_dirs(layout.wal)
        make_dirs(layout.snap)
        dir_lock = DirLock(layout.lock)
        try:
            return cls._load(layout, dir_lock, segment_bytes, preallocate_bytes, keep_snapshots)
        except BaseException:
            dir_lock.release()
            raise

    @classmethod
    def _load(
        cls, layout: Layout, dir_lock: DirLock, segment_bytes: int, preallocate: int, keep: int
    ) -> tuple[DiskStorage, Restored]:
        for directory in (layout.member, layout.wal, layout.snap):
            for p in remove_temp_files(directory):
                log.info("removed %s, left by an interrupted write", p)
        segments = list_segments(layout.wal)
        files = snapfile.list_files(layout.snap)
        if not segments:
            if files:
                raise StorageError("snapshot files but no WAL segments", path=layout.wal)
            wal = WalWriter.create(layout.wal, segment_bytes, preallocate)
            return cls(layout, wal, [], dir_lock, keep), Restored()
        state = replay(layout.wal, segments)
        retained = _usable_files(state, files, layout.snap)
        snapshot, entries = _restore_point(state, retained, layout.snap)
        wal = WalWriter(
            layout.wal,
            state.segments,
            state.tail_end,
            state.shape,
            state.hard_state,
            segment_bytes,
            preallocate,
        )
        storage = cls(layout, wal, [(f.index, f.term) for f in retained], dir_lock, keep)
        try:
            if snapshot is not None and snapshot.meta.index > state.shape.last:
                # The log restarts after this snapshot: say so in the WAL, so that the
                # entries the node appends next continue it there.
                m = snapshot.meta
                batch = encode_save((), None, SnapshotMark(m.index, m.term, restart=True))
                shape = wal.shape.copy()
                shape.restart(m.index, m.term)
                wal.append(batch.finish(), shape, None)
            storage._purge()
        except BaseException:
            wal.close()
            raise
        return storage, Restored(state.hard_state, snapshot, tuple(entries))

    def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        """Persist a Ready: ``snapshot`` (received), then ``entries`` (which replace the
        stored log from ``entries[0].index`` on), then ``hard_state``; one fsync.
        Raises ValueError (writing nothing) if the entries do not continue the log."""
        with self._lock:
            self._check_open()
            shape = self._wal.shape.copy()
            mark = None
            if snapshot is not None:
                m = snapshot.meta
                # The decision is recorded, not left to replay: replay may no longer
                # have the entries this one is checked against.
                mark = SnapshotMark(m.index, m.term, restart=not shape.matches(m.index, m.term))
                if mark.restart:
                    shape.restart(m.index, m.term)
                if entries and entries[0].index <= m.index:
                    entries = [e for e in entries if e.index > m.index]
            shape.append(entries)
            if mark is None and not entries and hard_state is None:
                return
            batch = encode_save(entries, hard_state, mark).finish()
            if snapshot is not None:
                snapfile.write(self.layout.snap, snapshot)
            self._wal.append(batch, shape, hard_state)
            if mark is not None:
                self._retain(mark.index, mark.term)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Persist a snapshot the node made (compaction). Older ones beyond
        ``keep_snapshots`` and the WAL segments no longer needed are deleted."""
        m = snapshot.meta
        with self._lock:
            self._check_open()
            if self._snapshots and m.index <= self._snapshots[-1][0]:
                return  # not newer than what is kept
        snapfile.write(self.layout.snap, snapshot)
        with self._lock:
            self._check_open()
            batch = Batch()
            batch.snapshot(SnapshotMark(m.index, m.term))
            self._wal.append(batch.finish(), self._wal.shape, None)
            self._retain(m.index, m.term)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wal.close()
            self._dir_lock.release()

    def read_meta(self) -> dict[str, Any] | None:
        """The member's metadata (name, ids, peers), or None if never written."""
        try:
            data = self.layout.meta.read_bytes()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads(data)
        except ValueError as e:
            raise StorageError(f"unreadable member metadata: {e}", path=self.layout.meta) from e
        if not isinstance(meta, dict):
            raise StorageError("member metadata is not a JSON object", path=self.layout.meta)
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Replace the member's metadata atomically."""
        data = json.dumps(meta, sort_keys=True, indent=2).encode() + b"\n"
        write_atomically(self.layout.meta, [data])

    @property
    def stats(self) -> WalStats:
        return self._wal.stats

    @property
    def snapshots(self) -> list[tuple[int, int]]:
        """The retained snapshot files as (index, term), oldest first."""
        return list(self._snapshots)

    def __enter__(self) -> DiskStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("storage is closed", path=self.layout.data_dir)

    def _retain(self, index: int, term: int) -> None:
        if (index, term) not in self._snapshots:
            self._snapshots.append((index, term))
            self._snapshots.sort()
        self._purge()

    def _purge(self) -> None:
        """Keep the newest snapshot files, and the WAL from the previous one on."""
        excess, self._snapshots = self._snapshots[: -self._keep], self._snapshots[-self._keep :]
        for index, term in excess:
            (self.layout.snap / snapfile.file_name(index, term)).unlink(missing_ok=True)
        if excess:
            fsync_dir(self.layout.snap)
        self._wal.snapshot_refs = list(self._snapshots)
        fallback = min(2, self._keep)
        if len(self._snapshots) >= fallback:
            self._wal.drop_through(self._snapshots[-fallback][0])


def _usable_files(
    state: WalState, files: list[snapfile.SnapFile], snap_dir: Path
) -> list[snapfile.SnapFile]:
    """The snapshot files the WAL references, oldest first. The others were written
    by a save or a compaction that did not finish: delete them."""
    usable = []
    for f in files:
        if (f.index, f.term) in state.snapshot_refs:
            usable.append(f)
        else:
            f.path.unlink()
            log.info("removed %s: the WAL does not reference it", f.path)
    if len(usable) < len(files):
        fsync_dir(snap_dir)
    return usable


def _restore_point(
    state: WalState, files: list[snapfile.SnapFile], snap_dir: Path
) -> tuple[Snapshot | None, list[Entry]]:
    """The newest readable snapshot and the entries after it. Damaged snapshot files
    are set aside (and removed from ``files``); falling back to an older snapshot works
    only if the WAL covers everything after it."""
    shape = state.shape
    broken: list[str] = []
    while files:
        f = files[-1]
        try:
            snapshot = snapfile.read(f.path)
        except (StorageError, OSError) as e:
            files.pop()
            broken.append(f.path.name)
            log.warning("snapshot unusable, set aside: %s", e)
            snapfile.set_aside(f.path)
            continue
        m = snapshot.meta
        if m.index < shape.start:
            raise StorageError(
                f"the WAL holds the log from index {shape.start + 1} on; the newest usable "
                f"snapshot ends at {m.index}{_broken_note(broken)}",
                path=snap_dir,
            )
        if m.index > shape.last:
            return snapshot, []
        if shape.term_at(m.index) not in (None, m.term):
            raise StorageError(
                f"snapshot {f.path.name} has term {m.term} at index {m.index}; the WAL "
                f"has term {shape.term_at(m.index)}",
                path=snap_dir,
            )
        return snapshot, state.entries[m.index - shape.start :]
    if shape.start > 0:
        raise StorageError(
            f"the WAL holds the log from index {shape.start + 1} on and no snapshot "
            f"covers what is before{_broken_note(broken)}",
            path=snap_dir,
        )
    return None, state.entries


def _broken_note(broken: list[str]) -> str:
    return f" (set aside as damaged: {', '.join(broken)})" if broken else ""
