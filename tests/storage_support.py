"""Helpers for the storage tests: deterministic entries, data-dir copies, a log model."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from store.raft.types import Entry, EntryType, HardState, Restored, Snapshot, SnapshotMeta
from store.storage import DiskStorage
from store.storage.records import FRAME


def make_entries(term: int, first: int, last: int, size: int = 24, seed: int = 0) -> list[Entry]:
    """Entries first..last of one term, with seeded pseudo-random data of ``size`` bytes."""
    rng = random.Random(f"{seed}:{term}:{first}")
    return [Entry(term, i, EntryType.NORMAL, rng.randbytes(size)) for i in range(first, last + 1)]


def snapshot(index: int, term: int, voters: tuple[int, ...] = (1, 2, 3)) -> Snapshot:
    return Snapshot(SnapshotMeta(index, term, voters), f"state@{index}/{term}".encode())


def wal_dir(data_dir: Path) -> Path:
    return data_dir / "member" / "wal"


def snap_dir(data_dir: Path) -> Path:
    return data_dir / "member" / "snap"


def segments(data_dir: Path) -> list[Path]:
    return sorted(wal_dir(data_dir).glob("*.wal"))


def tail(data_dir: Path) -> Path:
    return segments(data_dir)[-1]


def record_offsets(data: bytes) -> list[int]:
    """Where each record of an intact segment starts, read from the frames alone; they
    end where a frame header is all zeros (the unused preallocated part) or the data ends."""
    offsets, off = [], 0
    while off + FRAME.size <= len(data) and any(data[off : off + FRAME.size + 1]):
        offsets.append(off)
        length, _ = FRAME.unpack_from(data, off)
        off += FRAME.size + 1 + length
    return offsets


def used_bytes(data: bytes | Path) -> int:
    """Where the records of an intact segment end (a preallocated file is longer)."""
    if isinstance(data, Path):
        data = data.read_bytes()
    offsets = record_offsets(data)
    if not offsets:
        return 0
    length, _ = FRAME.unpack_from(data, offsets[-1])
    return offsets[-1] + FRAME.size + 1 + length


def zeros_after(data: bytes, offset: int) -> bool:
    return data.count(0, offset) == len(data) - offset


def crash_image(data: bytes, cut: int, preallocated: bool) -> bytes:
    """The segment ``data`` after a crash that kept only its first ``cut`` bytes: in a
    preallocated file the rest reads as zeros, in a growing one the file ends there."""
    return data[:cut] + bytes(len(data) - cut) if preallocated else data[:cut]


def clone(src: Path, dst: Path) -> Path:
    """A copy of a data dir, to damage or to open without changing the original."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    return dst


def reopen(data_dir: Path, **options: int) -> Restored:
    """Open, close, and return what was restored (repairs happen in place)."""
    storage, restored = DiskStorage.open(data_dir, **options)
    storage.close()
    return restored


@dataclass
class LogModel:
    """The storage contract, written the plain way: what a reopen must return."""

    hard_state: HardState = field(default_factory=HardState)
    snapshots: list[Snapshot] = field(default_factory=list)  # oldest first
    log: dict[int, Entry] = field(default_factory=dict)  # index -> entry, the whole log

    def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snap: Snapshot | None = None,
    ) -> None:
        if snap is not None:
            m = snap.meta
            if self.term_at(m.index) != m.term:  # Raft's rule: keep the log only if it matches
                self.log = {}
            self._add(snap)
            entries = [e for e in entries if e.index > m.index]
        if entries:
            first = entries[0].index
            self.log = {i: e for i, e in self.log.items() if i < first}
            self.log.update((e.index, e) for e in entries)
        if hard_state is not None:
            self.hard_state = hard_state

    def compact(self, snap: Snapshot) -> None:
        if snap.meta.index > self.snapshot_index:
            self._add(snap)

    def _add(self, snap: Snapshot) -> None:
        if snap not in self.snapshots:
            self.snapshots.append(snap)
            self.snapshots.sort(key=lambda s: (s.meta.index, s.meta.term))

    @property
    def snapshot(self) -> Snapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    @property
    def snapshot_index(self) -> int:
        return self.snapshots[-1].meta.index if self.snapshots else 0

    @property
    def last(self) -> int:
        return max(max(self.log, default=0), self.snapshot_index)

    def term_at(self, index: int) -> int | None:
        if index in self.log:
            return self.log[index].term
        for s in self.snapshots:
            if s.meta.index == index:
                return s.meta.term
        return None

    def restored(self, fallback: int = 0) -> Restored | None:
        """What a reopen returns if the newest ``fallback`` snapshots are unreadable;
        None if the log kept since the snapshot used then has a gap (StorageError)."""
        usable = self.snapshots[: len(self.snapshots) - fallback]
        snap = usable[-1] if usable else None
        start = snap.meta.index if snap else 0
        after = sorted(i for i in self.log if i > start)
        if after != list(range(start + 1, start + 1 + len(after))):
            return None
        if start + len(after) < self.snapshot_index:
            return None  # what the newer snapshots hold is not in the log
        return Restored(self.hard_state, snap, tuple(self.log[i] for i in after))
