"""Preallocated WAL segments: the zeros after the last record end the log, a reopened
segment continues right after that record, a torn record in the preallocated part is
cut, segments rotate, and where preallocation fails the WAL appends with fsync."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store.raft.types import HardState
from store.storage import DiskStorage, StorageError
from store.storage.records import encode_save, scan
from tests.storage_support import (
    LogModel,
    make_entries,
    record_offsets,
    reopen,
    segments,
    tail,
    used_bytes,
    zeros_after,
)

SEGMENT = 16 << 10
posix_fallocate = os.posix_fallocate


@pytest.fixture
def sync_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the os.write / os.fsync / os.fdatasync calls made, in order."""
    calls: list[str] = []
    real = {name: getattr(os, name) for name in ("write", "fsync", "fdatasync")}

    def spy(name: str) -> Callable[..., object]:
        def call(*args: object) -> object:
            calls.append(name)
            return real[name](*args)

        return call

    for name in real:
        monkeypatch.setattr(os, name, spy(name))
    yield calls
    monkeypatch.undo()


def _fail_fallocate(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make posix_fallocate fail like a file system without it; returns the sizes asked."""
    asked: list[int] = []

    def unsupported(fd: int, offset: int, length: int) -> None:
        asked.append(length)
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    return asked


def test_a_new_segment_is_preallocated_and_appends_keep_its_size(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path, segment_bytes=SEGMENT)[0] as storage:
        st = tail(tmp_path).stat()
        assert st.st_size == SEGMENT
        assert st.st_blocks * 512 >= SEGMENT, "allocated, not a sparse file"
        header = used_bytes(tail(tmp_path))
        for i in range(1, 41, 4):
            es, hs = make_entries(1, i, i + 3, size=50), HardState(1, 1, i - 1)
            storage.save(hs, es)
            model.save(hs, es)
            assert tail(tmp_path).stat().st_size == SEGMENT
        assert storage.stats.unpreallocated == 0
        assert used_bytes(tail(tmp_path)) == header + storage.stats.bytes
    assert zeros_after(tail(tmp_path).read_bytes(), header + storage.stats.bytes)
    assert reopen(tmp_path, segment_bytes=SEGMENT) == model.restored()


def test_a_reopened_segment_continues_right_after_its_last_record(tmp_path: Path) -> None:
    options = {"segment_bytes": SEGMENT}
    model = LogModel()
    for run in range(5):
        storage, restored = DiskStorage.open(tmp_path, **options)
        assert restored == model.restored()
        before = tail(tmp_path).read_bytes()
        end = used_bytes(before)
        es, hs = make_entries(run + 1, 3 * run + 1, 3 * run + 3), HardState(run + 1, 1, 3 * run)
        storage.save(hs, es)
        model.save(hs, es)
        if run % 2:
            storage.save(HardState(run + 1, 1, 3 * run + 3), [])  # a state-only save
            model.save(HardState(run + 1, 1, 3 * run + 3), [])
        written = storage.stats.bytes
        storage.close()
        after = tail(tmp_path).read_bytes()
        assert len(after) == SEGMENT, f"run {run}: the file grew"
        assert after[:end] == before[:end], f"run {run}: earlier records changed"
        # the new records start exactly where the old ones ended: no gap, no overlap
        assert end in record_offsets(after)
        assert used_bytes(after) == end + written, f"run {run}"
        assert zeros_after(after, used_bytes(after))
    assert len(segments(tmp_path)) == 1
    assert reopen(tmp_path, **options) == model.restored()


def test_zeros_after_the_last_record_end_the_scan_without_damage(tmp_path: Path) -> None:
    batch = encode_save(make_entries(1, 1, 3), HardState(1, 1, 0)).finish()
    batch += encode_save([], HardState(1, 1, 3)).finish()
    data = bytes(batch)
    path = tmp_path / "segment.wal"
    clean = scan(data, path)
    assert clean.damage is None and len(clean.saves) == 2
    for zeros in (1, 8, 9, 100, 4096, SEGMENT):
        result = scan(data + bytes(zeros), path)
        assert result.damage is None, f"{zeros} zeros"
        assert (result.saves, result.end) == (clean.saves, clean.end)
    # anything but zeros after the last save is damage (a torn tail, for replay to judge)
    for junk in (b"\x01", bytes(8) + b"\x01", bytes(100) + b"\xff" + bytes(100)):
        result = scan(data + junk, path)
        assert result.damage is not None and result.end == clean.end, junk
        assert result.damage.valid_after is None
    # complete records of a save whose COMMIT record never came, then zeros
    unfinished = bytes(encode_save(make_entries(1, 4, 6), None).finish())
    unfinished = unfinished[: record_offsets(unfinished)[-1]]
    result = scan(data + unfinished + bytes(SEGMENT), path)
    assert result.damage is not None and result.end == clean.end
    assert "no COMMIT record" in result.damage.reason


def test_older_segments_with_zeros_after_their_records_replay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Preallocating more than a segment holds leaves zeros at the end of every segment.
    options = {"segment_bytes": 512, "preallocate_bytes": 4096}
    model = LogModel()
    with DiskStorage.open(tmp_path, **options)[0] as storage:
        for i in range(1, 80, 4):
            es, hs = make_entries(1, i, i + 3, size=30), HardState(1, 1, i - 1)
            storage.save(hs, es)
            model.save(hs, es)
    segs = segments(tmp_path)
    assert len(segs) > 3
    for p in segs:
        content = p.read_bytes()
        assert len(content) == 4096 and 0 < used_bytes(content) < 4096
    caplog.clear()
    assert reopen(tmp_path, **options) == model.restored()
    assert "torn tail" not in caplog.text
    assert [p.read_bytes() for p in segments(tmp_path)] == [p.read_bytes() for p in segs]


@pytest.mark.parametrize("gap", ["preallocated", "sparse"])
def test_what_is_written_past_a_never_written_gap_is_still_read(tmp_path: Path, gap: str) -> None:
    """Replay does not read the never-written end of a segment (a hole, if the file
    system says so), but it must not stop at a hole with data after it."""
    size = 1 << 20
    far = size - 4096  # a block of its own, past the gap
    options = {"segment_bytes": size, "preallocate_bytes": size if gap == "preallocated" else 0}
    with DiskStorage.open(tmp_path, **options)[0] as storage:
        storage.save(HardState(1, 1, 0), make_entries(1, 1, 3))
    expected = reopen(tmp_path, **options)
    fd = os.open(tail(tmp_path), os.O_RDWR)
    try:
        end = used_bytes(os.pread(fd, 4096, 0))  # reading all would cache the zeros as data
        stray = encode_save(make_entries(1, 4, 4), HardState(1, 1, 3)).finish()
        os.pwrite(fd, stray, far)  # a valid save, after the gap
        os.fsync(fd)
        hole = os.lseek(fd, end, os.SEEK_HOLE)
    finally:
        os.close(fd)
    # ext4 and xfs report unwritten preallocated blocks as a hole too; all report a sparse one
    print(f"{gap}: first hole after the records at {hole}, the stray save at {far}")
    assert hole < far or gap == "preallocated"
    with pytest.raises(StorageError, match=f"valid record follows at offset {far}"):
        reopen(tmp_path, **options)
    fd = os.open(tail(tmp_path), os.O_RDWR)
    try:
        os.pwrite(fd, b"\xff" * len(stray), far)  # garbage instead: a torn tail, cut
    finally:
        os.close(fd)
    assert reopen(tmp_path, **options) == expected
    content = tail(tmp_path).read_bytes()
    assert zeros_after(content, end)
    assert len(content) == (size if gap == "preallocated" else end)


def test_a_torn_record_in_the_preallocated_part_is_cut_and_the_log_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"segment_bytes": SEGMENT}
    model = LogModel()
    with DiskStorage.open(tmp_path, **options)[0] as storage:
        es, hs = make_entries(1, 1, 4), HardState(1, 1, 0)
        storage.save(hs, es)
        model.save(hs, es)
        end = used_bytes(tail(tmp_path))
        storage.save(HardState(1, 1, 4), make_entries(1, 5, 12, size=200))  # to be torn
    content = bytearray(tail(tmp_path).read_bytes())
    torn_end = used_bytes(bytes(content))
    keep = end + (torn_end - end) // 3  # mid-record: the rest never reached the disk
    content[keep:torn_end] = bytes(torn_end - keep)
    tail(tmp_path).write_bytes(content)
    caplog.clear()
    storage, restored = DiskStorage.open(tmp_path, **options)
    assert restored == model.restored()
    assert f"cut off a torn tail of {keep - end} bytes" in caplog.text
    repaired = tail(tmp_path).read_bytes()
    assert len(repaired) == SEGMENT, "preallocated again"
    assert repaired[:end] == content[:end] and zeros_after(repaired, end)
    with storage:
        es, hs = make_entries(2, 5, 5, size=1), HardState(2, 1, 4)  # shorter than the torn save
        storage.save(hs, es)
        model.save(hs, es)
    assert reopen(tmp_path, **options) == model.restored()


def test_segments_rotate_and_each_is_preallocated(tmp_path: Path) -> None:
    limit = 1024
    model = LogModel()
    with DiskStorage.open(tmp_path, segment_bytes=limit)[0] as storage:
        for i in range(1, 120, 3):
            es, hs = make_entries(1, i, i + 2, size=40), HardState(1, 1, i - 1)
            storage.save(hs, es)
            model.save(hs, es)
            assert tail(tmp_path).stat().st_size >= limit
        created = storage.stats.segments_created
        assert storage.stats.unpreallocated == 0
    segs = segments(tmp_path)
    assert created == len(segs) - 1 >= 5
    for p in segs[:-1]:  # full: rotation happens once the records reach the limit
        assert limit <= used_bytes(p) == p.stat().st_size
    last = tail(tmp_path).read_bytes()
    assert len(last) == max(limit, used_bytes(last)) and zeros_after(last, used_bytes(last))
    assert reopen(tmp_path, segment_bytes=limit) == model.restored()


def test_without_preallocation_appends_grow_the_file_and_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync_calls: list[str]
) -> None:
    asked = _fail_fallocate(monkeypatch)
    options = {"segment_bytes": 1024}
    model = LogModel()
    storage, _ = DiskStorage.open(tmp_path, **options)
    with storage:
        for i in range(1, 60, 3):
            es, hs = make_entries(1, i, i + 2, size=40), HardState(1, 1, i - 1)
            sync_calls.clear()
            storage.save(hs, es)
            model.save(hs, es)
            assert sync_calls[-2:] == ["write", "fsync"]
            assert tail(tmp_path).stat().st_size == used_bytes(tail(tmp_path))
        assert storage.stats.unpreallocated == len(segments(tmp_path)) > 1
    assert asked == [1024] * len(segments(tmp_path))
    assert reopen(tmp_path, **options) == model.restored()

    # Once the file system can, the tail is preallocated on open and appends continue
    # after its last record, with fdatasync. (Segments are larger now: the tail is
    # not full, whatever its size.)
    monkeypatch.setattr(os, "posix_fallocate", posix_fallocate)
    options = {"segment_bytes": 4096}
    end = used_bytes(tail(tmp_path))
    with DiskStorage.open(tmp_path, **options)[0] as storage:
        assert tail(tmp_path).stat().st_size == 4096 > end
        sync_calls.clear()
        es, hs = make_entries(2, 61, 61), HardState(2, 1, 60)
        storage.save(hs, es)
        model.save(hs, es)
        assert sync_calls == ["write", "fdatasync"]
        assert used_bytes(tail(tmp_path)) == end + storage.stats.bytes
    assert reopen(tmp_path, **options) == model.restored()


def test_preallocation_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync_calls: list[str]
) -> None:
    asked: list[int] = []

    def counted(fd: int, offset: int, length: int) -> None:
        asked.append(length)
        posix_fallocate(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", counted)
    with DiskStorage.open(tmp_path, segment_bytes=SEGMENT, preallocate_bytes=0)[0] as storage:
        sync_calls.clear()
        storage.save(HardState(1, 1, 0), make_entries(1, 1, 3))
        assert sync_calls == ["write", "fsync"]
        assert storage.stats.unpreallocated == 0
    assert asked == []
    assert tail(tmp_path).stat().st_size == used_bytes(tail(tmp_path))
    with pytest.raises(ValueError, match="preallocate_bytes"):
        DiskStorage.open(tmp_path, preallocate_bytes=-1)


def test_changing_the_preallocation_between_runs_keeps_the_log(tmp_path: Path) -> None:
    seed = 20240611
    rng = random.Random(seed)
    model = LogModel()
    term = 1
    for run in range(12):
        options = {
            "segment_bytes": 700,
            "preallocate_bytes": rng.choice([0, 300, 700, 3000]),
        }
        storage, restored = DiskStorage.open(tmp_path, **options)
        assert restored == model.restored(), f"seed {seed}, run {run}, {options}"
        with storage:
            for _ in range(rng.randint(1, 8)):
                if rng.random() < 0.2 and model.last > model.hard_state.commit + 1:
                    term += 1
                    first = rng.randint(model.hard_state.commit + 1, model.last)
                else:
                    first = model.last + 1
                es = make_entries(term, first, first + rng.randint(0, 4), size=rng.randint(0, 90))
                # commit moves forward, but never past what the save keeps of the old log
                commit = max(model.hard_state.commit, first - 1 - rng.randint(0, 2))
                hs = HardState(term, 1, commit)
                storage.save(hs, es)
                model.save(hs, es)
    assert reopen(tmp_path, segment_bytes=700) == model.restored(), f"seed {seed}"
    assert len(segments(tmp_path)) > 3
