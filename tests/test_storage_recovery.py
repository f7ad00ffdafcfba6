"""WAL recovery: torn tails are cut off, damage elsewhere is refused, and a crash in
the middle of a save leaves the state from before it or after it, never a mix."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from store.raft.types import HardState, Restored
from store.storage import DiskStorage, StorageError
from store.storage.records import FRAME, Batch, Kind
from tests.storage_support import (
    LogModel,
    clone,
    make_entries,
    reopen,
    segments,
    snap_dir,
    snapshot,
    tail,
    wal_dir,
)

Save = Callable[[DiskStorage, LogModel], None]


def _saves() -> list[Save]:
    """Saves of every shape: entries with a state, state only, entries only, an
    overwrite, a compaction reference."""

    def entries_and_state(first: int, last: int, term: int) -> Save:
        def run(s: DiskStorage, m: LogModel) -> None:
            es = make_entries(term, first, last, size=30)
            hs = HardState(term, 1, first - 1)
            s.save(hs, es)
            m.save(hs, es)

        return run

    def state_only(s: DiskStorage, m: LogModel) -> None:
        s.save(HardState(2, 2, 5), [])
        m.save(HardState(2, 2, 5), [])

    def entries_only(s: DiskStorage, m: LogModel) -> None:
        es = make_entries(2, 8, 9, size=7)
        s.save(None, es)
        m.save(None, es)

    def compaction(s: DiskStorage, m: LogModel) -> None:
        snap = snapshot(4, 1)
        s.save_snapshot(snap)
        m.compact(snap)

    return [
        entries_and_state(1, 5, 1),
        entries_and_state(6, 7, 2),  # overwrite-free continuation
        state_only,
        compaction,
        entries_only,
        entries_and_state(7, 8, 3),  # overwrites 7.. with term 3
    ]


def _build(data: Path, saves: list[Save]) -> tuple[list[int], list[Restored]]:
    """Run the saves; return the tail segment's size and the model's state after each."""
    sizes, states = [], []
    model = LogModel()
    storage, restored = DiskStorage.open(data)
    sizes.append(tail(data).stat().st_size)
    states.append(restored)
    for save in saves:
        save(storage, model)
        sizes.append(tail(data).stat().st_size)
        state = model.restored()
        assert state is not None
        states.append(state)
    storage.close()
    assert reopen(clone(data, data.with_name("check"))) == states[-1]
    return sizes, states


def test_truncation_at_every_offset_restores_the_last_whole_save(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    work = tmp_path / "work"
    for cut in range(sizes[0], sizes[-1]):
        clone(data, work)
        tail(work).write_bytes(original[:cut])
        whole = max(k for k, size in enumerate(sizes) if size <= cut)
        assert reopen(work) == states[whole], f"cut at byte {cut}"
        assert tail(work).stat().st_size == sizes[whole], f"cut at byte {cut}: not repaired"


def test_after_a_repair_the_log_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    work = tmp_path / "work"
    for cut in (sizes[-2] + 1, (sizes[-2] + sizes[-1]) // 2, sizes[-1] - 1):
        clone(data, work)
        tail(work).write_bytes(original[:cut])
        storage, restored = DiskStorage.open(work)
        assert restored == states[-2]
        es = make_entries(4, 10, 11)
        storage.save(HardState(4, 1, 9), es)
        storage.close()
        again = reopen(work)
        assert again.entries[-2:] == tuple(es)
        assert again.hard_state == HardState(4, 1, 9)


def test_a_flipped_byte_in_the_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    last_record = _record_offsets(original)[-1]
    work = tmp_path / "work"
    for pos in range(last_record, sizes[-1]):
        clone(data, work)
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        tail(work).write_bytes(damaged)
        assert reopen(work) == states[-2], f"flipped byte {pos}"


def test_a_flipped_byte_before_the_last_record_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, _ = _build(data, _saves())
    original = tail(data).read_bytes()
    last_record = _record_offsets(original)[-1]
    work = tmp_path / "work"
    rng = random.Random(7)
    # every byte of the last two saves (but their last record), and a sample before
    positions = [*range(sizes[-3], last_record), *rng.sample(range(sizes[-3]), 60)]
    for pos in positions:
        clone(data, work)
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        tail(work).write_bytes(damaged)
        with pytest.raises(StorageError, match=r"\.wal at offset \d+: .*valid record follows"):
            reopen(work)
        assert tail(work).read_bytes() == damaged, "a corrupt log must be left as it is"


def test_a_zero_filled_or_garbage_tail_is_cut_off(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    work = tmp_path / "work"
    rng = random.Random(11)
    for junk in (bytes(4096), rng.randbytes(3000), b"\x00" * 9, b"\xff" * 5):
        clone(data, work)
        with tail(work).open("ab") as f:
            f.write(junk)
        assert reopen(work) == states[-1]
        assert tail(work).stat().st_size == sizes[-1]


def test_damage_in_an_older_segment_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, segment_bytes=300)[0] as storage:
        for i in range(1, 30, 3):
            storage.save(HardState(1, 1, i - 1), make_entries(1, i, i + 2, size=20))
    first = segments(data)[0]
    assert len(segments(data)) >= 3
    content = bytearray(first.read_bytes())
    content[-3] ^= 0x01  # in the segment's very last record: torn, were it the tail
    first.write_bytes(content)
    with pytest.raises(StorageError, match=rf"{first.name} at offset \d+: .*later segments exist"):
        reopen(data, segment_bytes=300)
    first.write_bytes(content[:-3])  # a short older segment: also corruption
    with pytest.raises(StorageError, match="later segments exist"):
        reopen(data, segment_bytes=300)


def test_a_missing_segment_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, segment_bytes=300)[0] as storage:
        for i in range(1, 30, 3):
            storage.save(HardState(1, 1, i - 1), make_entries(1, i, i + 2, size=20))
    segments(data)[1].unlink()
    with pytest.raises(StorageError, match="not consecutive: a segment is missing"):
        reopen(data)


def test_a_damaged_segment_header_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data)[0] as storage:
        storage.save(HardState(1), [])
    content = bytearray(tail(data).read_bytes())
    content[FRAME.size + 3] ^= 0x10  # inside the SegmentHeader record
    tail(data).write_bytes(content)
    with pytest.raises(StorageError, match="valid record follows"):
        reopen(data)
    tail(data).write_bytes(content[:20])  # only a torn header left
    with pytest.raises(StorageError, match="in the segment's header"):
        reopen(data)


def test_a_malformed_record_with_a_valid_checksum_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data)[0] as storage:
        storage.save(HardState(1), make_entries(1, 1, 2))
    batch = Batch()
    batch._add(bytes([Kind.STATE]) + b"\x01\x02")  # a HardState of 2 bytes
    size = tail(data).stat().st_size
    with tail(data).open("ab") as f:
        f.write(batch.finish())
    with pytest.raises(StorageError, match=rf"offset {size}: malformed STATE record"):
        reopen(data)


# --- a crash in the middle of a save -------------------------------------------


def _appended_region_cases(tmp_path: Path, save: Save, model: LogModel) -> None:
    """Crash images of one save: the bytes it appended cut at every offset."""
    data = tmp_path / "data"
    before = clone(data, tmp_path / "before")
    old = reopen(clone(before, tmp_path / "old"))
    storage, _ = DiskStorage.open(data)
    save(storage, model)
    storage.close()
    new = model.restored()
    assert reopen(clone(data, tmp_path / "new")) == new
    old_tail = tail(before).read_bytes()
    new_tail = tail(data).read_bytes()
    assert new_tail.startswith(old_tail) and len(new_tail) > len(old_tail)
    work = tmp_path / "work"
    for cut in range(len(old_tail), len(new_tail)):
        clone(data, work)
        tail(work).write_bytes(new_tail[:cut])
        assert reopen(work) == old, f"cut at {cut} of {len(old_tail)}..{len(new_tail)}"
    shutil.rmtree(tmp_path / "before")


def test_a_crash_mid_save_leaves_the_old_state_or_the_new(tmp_path: Path) -> None:
    data = tmp_path / "data"
    model = LogModel()
    with DiskStorage.open(data)[0] as storage:
        es = make_entries(1, 1, 6, size=50)
        storage.save(HardState(1, 1, 3), es)
        model.save(HardState(1, 1, 3), es)

    def big_save(s: DiskStorage, m: LogModel) -> None:  # an overwrite plus a new term
        es = make_entries(2, 5, 12, size=50)
        s.save(HardState(2, 2, 4), es)
        m.save(HardState(2, 2, 4), es)

    _appended_region_cases(tmp_path, big_save, model)

    def receive(s: DiskStorage, m: LogModel) -> None:  # a snapshot that restarts the log
        snap, es = snapshot(20, 3), make_entries(3, 21, 23, size=50)
        s.save(HardState(3, 0, 20), es, snap)
        m.save(HardState(3, 0, 20), es, snap)

    _appended_region_cases(tmp_path, receive, model)


def test_a_crash_before_the_wal_references_a_snapshot_leaves_the_old_state(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data)[0] as storage:
        storage.save(HardState(1, 1, 4), make_entries(1, 1, 6))
    before = clone(data, tmp_path / "before")
    old = reopen(clone(before, tmp_path / "old"))
    with DiskStorage.open(data)[0] as storage:
        storage.save(HardState(3, 0, 20), make_entries(3, 21, 22), snapshot(20, 3))
    snap_file = next(snap_dir(data).glob("*.snap"))
    content = snap_file.read_bytes()
    # The crash images of that save: the WAL as before it, and the snapshot file
    # either half written (still a temporary file) or complete.
    images = {
        "temporary": (f"{snap_file.name}.x1.tmp", content[: len(content) // 2]),
        "unreferenced": (snap_file.name, content),
    }
    work = tmp_path / "work"
    for image, (name, written) in images.items():
        clone(before, work)
        (snap_dir(work) / name).write_bytes(written)
        assert reopen(work) == old, image
        assert list(snap_dir(work).iterdir()) == [], f"{image}: leftover not removed"


def test_a_crash_while_starting_a_segment_leaves_no_trace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, segment_bytes=200)[0] as storage:
        storage.save(HardState(1, 1, 0), make_entries(1, 1, 8, size=30))
    expected = reopen(clone(data, tmp_path / "ref"))
    leftover = wal_dir(data) / "0000000000000001-0000000000000009.wal.abc.tmp"
    leftover.write_bytes(b"\x01\x02")
    assert reopen(data, segment_bytes=200) == expected
    assert not leftover.exists()
    assert len(segments(data)) == 1


def _record_offsets(data: bytes) -> list[int]:
    offsets, off = [], 0
    while off < len(data):
        offsets.append(off)
        length, _ = FRAME.unpack_from(data, off)
        off += FRAME.size + 1 + length
    return offsets
