"""Snapshot files: format, compaction and retention, received snapshots, and falling
back to an older snapshot when the newest is damaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.raft.types import HardState, Snapshot, SnapshotMeta
from store.storage import DiskStorage, StorageError, snapfile
from tests.storage_support import (
    LogModel,
    make_entries,
    reopen,
    segments,
    snap_dir,
    snapshot,
)

SMALL = {"segment_bytes": 400, "keep_snapshots": 3}


def _grow(storage: DiskStorage, model: LogModel, last: int, term: int = 1) -> None:
    """Append entries up to ``last``, committing everything before each append."""
    while model.last < last:
        first = model.last + 1
        es = make_entries(term, first, min(last, first + 2), size=40)
        hs = HardState(term, 1, model.last)
        storage.save(hs, es)
        model.save(hs, es)


def _corrupt(path: Path, at: int | None = None) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 2 if at is None else at] ^= 0x55
    path.write_bytes(content)


def _snap_path(data: Path, index: int, term: int) -> Path:
    return snap_dir(data) / snapfile.file_name(index, term)


def test_snapshot_file_round_trip_and_name() -> None:
    snap = Snapshot(SnapshotMeta(0x2A, 7, (1, 5, 9)), bytes(range(256)) * 3)
    content = b"".join(snapfile.encode(snap))
    path = Path("0000000000000007-000000000000002a.snap")
    assert snapfile.file_name(0x2A, 7) == path.name
    assert snapfile.parse_name(path) == (0x2A, 7)
    assert snapfile.decode(content, path) == snap
    empty = Snapshot(SnapshotMeta(1, 1, ()), b"")
    assert snapfile.decode(b"".join(snapfile.encode(empty)), Path("x.snap")) == empty


def test_every_truncation_and_flipped_byte_of_a_snapshot_file_is_detected() -> None:
    snap = Snapshot(SnapshotMeta(9, 2, (1, 2, 3)), b"state machine contents")
    content = b"".join(snapfile.encode(snap))
    path = Path(snapfile.file_name(9, 2))
    for cut in range(len(content)):
        with pytest.raises(StorageError, match=r"snapshot file|not a snapshot"):
            snapfile.decode(content[:cut], path)
    for pos in range(len(content)):
        damaged = bytearray(content)
        damaged[pos] ^= 0x01
        with pytest.raises(StorageError):
            snapfile.decode(bytes(damaged), path)
    with pytest.raises(StorageError, match="holds index 9 term 2"):
        snapfile.decode(content, Path(snapfile.file_name(10, 2)))


def test_compaction_snapshot_is_restored_with_the_entries_after_it(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path)[0] as storage:
        _grow(storage, model, 12)
        snap = snapshot(8, 1, voters=(1, 2, 3, 4, 5))
        storage.save_snapshot(snap)
        model.compact(snap)
        _grow(storage, model, 14)
    restored = reopen(tmp_path)
    assert restored == model.restored()
    assert restored.snapshot == snap
    assert [e.index for e in restored.entries] == list(range(9, 15))


def test_compaction_keeps_a_few_snapshots_and_drops_covered_segments(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path, **SMALL)[0] as storage:
        for n in range(1, 9):
            _grow(storage, model, 20 * n)
            snap = snapshot(20 * n - 5, 1)
            storage.save_snapshot(snap)
            model.compact(snap)
            kept = storage.snapshots
            assert len(kept) == min(n, 3)
            assert sorted(p.name for p in snap_dir(tmp_path).glob("*.snap")) == sorted(
                snapfile.file_name(i, t) for i, t in kept
            )
            # the WAL still starts at or before the previous snapshot
            first = int(segments(tmp_path)[0].name[17:33], 16)
            previous = kept[-2][0] if len(kept) > 1 else 0
            assert first - 1 <= previous
        assert storage.stats.segments_dropped > 0
    # every segment left but the first is needed: it starts after the previous snapshot
    firsts = [int(p.name[17:33], 16) for p in segments(tmp_path)]
    assert firsts[1] - 1 > kept[-2][0]
    assert reopen(tmp_path, **SMALL) == model.restored()


def test_an_older_snapshot_is_not_saved_again(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path)[0] as storage:
        _grow(storage, model, 10)
        storage.save_snapshot(snapshot(8, 1))
        storage.save_snapshot(snapshot(5, 1))
        storage.save_snapshot(snapshot(8, 1))
        assert storage.snapshots == [(8, 1)]
    assert reopen(tmp_path).snapshot == snapshot(8, 1)


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path, **SMALL)[0] as storage:
        for n in range(1, 5):
            _grow(storage, model, 20 * n)
            snap = snapshot(20 * n - 5, 1)
            storage.save_snapshot(snap)
            model.compact(snap)
    newest = _snap_path(tmp_path, 75, 1)
    _corrupt(newest)
    restored = reopen(tmp_path, **SMALL)
    assert restored == model.restored(fallback=1)
    assert restored.snapshot == snapshot(55, 1)
    assert not newest.exists()
    assert newest.with_name(newest.name + ".broken").exists()
    assert reopen(tmp_path, **SMALL) == restored  # set aside: not tried again


def test_a_fallback_the_wal_does_not_cover_is_refused(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path, **SMALL)[0] as storage:
        for n in range(1, 6):
            _grow(storage, model, 20 * n)
            storage.save_snapshot(snapshot(20 * n - 5, 1))
    # the WAL covers from the previous snapshot (75) on, not from the one before (55)
    _corrupt(_snap_path(tmp_path, 95, 1))
    _corrupt(_snap_path(tmp_path, 75, 1))
    with pytest.raises(
        StorageError, match=r"from index \d+ on; the newest usable snapshot ends at 55"
    ):
        reopen(tmp_path, **SMALL)


def test_without_a_readable_snapshot_a_wal_from_the_start_is_enough(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path)[0] as storage:
        _grow(storage, model, 10)
        storage.save_snapshot(snapshot(6, 1))
        _grow(storage, model, 12)
    _corrupt(_snap_path(tmp_path, 6, 1))
    restored = reopen(tmp_path)
    assert restored.snapshot is None
    assert [e.index for e in restored.entries] == list(range(1, 13))


def test_a_received_snapshot_restarts_a_log_that_does_not_match(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path)[0] as storage:
        _grow(storage, model, 10)
        snap = snapshot(30, 3)
        # entries at or below the snapshot in the same save are dropped
        es = make_entries(3, 28, 33)
        storage.save(HardState(3, 0, 30), es, snap)
        model.save(HardState(3, 0, 30), es, snap)
    restored = reopen(tmp_path)
    assert restored == model.restored()
    assert restored.snapshot == snap
    assert [(e.index, e.term) for e in restored.entries] == [(31, 3), (32, 3), (33, 3)]
    with DiskStorage.open(tmp_path)[0] as storage:  # and the log goes on after it
        storage.save(HardState(3, 0, 33), make_entries(3, 34, 35))
    assert [e.index for e in reopen(tmp_path).entries] == [31, 32, 33, 34, 35]


def test_a_received_snapshot_keeps_a_log_that_matches(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path)[0] as storage:
        _grow(storage, model, 10)
        snap = snapshot(7, 1)  # the log holds entry 7 of term 1
        storage.save(HardState(1, 0, 7), [], snap)
        model.save(HardState(1, 0, 7), [], snap)
    restored = reopen(tmp_path)
    assert restored == model.restored()
    assert [e.index for e in restored.entries] == [8, 9, 10]


def test_a_damaged_received_snapshot_has_no_fallback(tmp_path: Path) -> None:
    with DiskStorage.open(tmp_path)[0] as storage:
        storage.save(HardState(1, 1, 4), make_entries(1, 1, 5))
        storage.save_snapshot(snapshot(4, 1))
        storage.save(HardState(3, 0, 50), make_entries(3, 51, 52), snapshot(50, 3))
    _corrupt(_snap_path(tmp_path, 50, 3))
    with pytest.raises(
        StorageError, match=r"from index 51 on; the newest usable snapshot ends at 4"
    ):
        reopen(tmp_path)


def test_a_snapshot_beyond_the_stored_log(tmp_path: Path) -> None:
    # A leader may apply (and so snapshot) entries it has not persisted yet.
    with DiskStorage.open(tmp_path)[0] as storage:
        storage.save(HardState(1, 1, 3), make_entries(1, 1, 3))
        storage.save_snapshot(snapshot(5, 1))
    storage, restored = DiskStorage.open(tmp_path)
    assert restored.snapshot == snapshot(5, 1) and restored.entries == ()
    storage.save(HardState(1, 1, 6), make_entries(1, 6, 7))
    storage.close()
    restored = reopen(tmp_path)
    assert [e.index for e in restored.entries] == [6, 7]


def test_snapshot_files_without_a_wal_are_refused(tmp_path: Path) -> None:
    with DiskStorage.open(tmp_path)[0] as storage:
        storage.save(HardState(1, 1, 3), make_entries(1, 1, 3))
        storage.save_snapshot(snapshot(3, 1))
    for p in segments(tmp_path):
        p.unlink()
    with pytest.raises(StorageError, match="snapshot files but no WAL segments"):
        reopen(tmp_path)
