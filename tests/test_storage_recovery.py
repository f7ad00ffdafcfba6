"""WAL recovery: torn tails are cut off, damage elsewhere is refused, and a crash in
the middle of a save leaves the state from before it or after it, never a mix.

Segments are preallocated, so a crash image is either the file with everything
after the cut zero (``preallocated``) or the file ending at the cut (``growing``:
a segment whose preallocation failed, or one written before preallocation).
"""

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
    crash_image,
    make_entries,
    record_offsets,
    reopen,
    segments,
    snap_dir,
    snapshot,
    tail,
    used_bytes,
    wal_dir,
    zeros_after,
)

Save = Callable[[DiskStorage, LogModel], None]
# One segment holds everything these tests write; preallocated, it stays small to copy.
SEGMENT = 64 << 10
OPTIONS = {"segment_bytes": SEGMENT}
IMAGES = pytest.mark.parametrize("preallocated", [True, False], ids=["preallocated", "growing"])


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
    """Run the saves; return where the tail segment's records end and the model's
    state, after each."""
    sizes, states = [], []
    model = LogModel()
    storage, restored = DiskStorage.open(data, **OPTIONS)
    sizes.append(used_bytes(tail(data)))
    states.append(restored)
    for save in saves:
        save(storage, model)
        sizes.append(used_bytes(tail(data)))
        state = model.restored()
        assert state is not None
        states.append(state)
    storage.close()
    assert tail(data).stat().st_size == SEGMENT  # preallocated, and never grown
    assert reopen(clone(data, data.with_name("check")), **OPTIONS) == states[-1]
    return sizes, states


def _assert_repaired(segment: Path, original: bytes, end: int, context: str) -> None:
    """The segment holds ``original`` up to ``end``, then zeros, preallocated again."""
    content = segment.read_bytes()
    assert content[:end] == original[:end], context
    assert zeros_after(content, end), f"{context}: the torn bytes are still there"
    assert len(content) == SEGMENT, f"{context}: not preallocated again"


@IMAGES
def test_truncation_at_every_offset_restores_the_last_whole_save(
    tmp_path: Path, preallocated: bool
) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    work = tmp_path / "work"
    assert sizes[-1] - sizes[0] > 400
    for cut in range(sizes[0], sizes[-1]):
        clone(data, work)
        image = crash_image(original, cut, preallocated)
        tail(work).write_bytes(image)
        # A save whose last bytes are zeros is whole in a preallocated image cut there.
        whole = max(k for k, size in enumerate(sizes) if image[:size] == original[:size])
        assert reopen(work, **OPTIONS) == states[whole], f"cut at byte {cut}"
        _assert_repaired(tail(work), original, sizes[whole], f"cut at byte {cut}")


@IMAGES
def test_after_a_repair_the_log_continues(tmp_path: Path, preallocated: bool) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    work = tmp_path / "work"
    es = make_entries(4, 10, 10, size=1)  # shorter than the torn save: no torn bytes may remain
    last_nonzero = len(original[: sizes[-1]].rstrip(b"\0")) - 1
    for cut in (sizes[-2] + 1, (sizes[-2] + sizes[-1]) // 2, last_nonzero):
        clone(data, work)
        tail(work).write_bytes(crash_image(original, cut, preallocated))
        storage, restored = DiskStorage.open(work, **OPTIONS)
        assert restored == states[-2]
        storage.save(HardState(4, 1, 9), es)
        storage.close()
        assert used_bytes(tail(work)) < sizes[-1]
        again = reopen(work, **OPTIONS)
        assert again.entries == (*states[-2].entries, *es), f"cut at byte {cut}"
        assert again.hard_state == HardState(4, 1, 9)


def test_a_flipped_byte_in_the_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    last_record = record_offsets(original)[-1]
    work = tmp_path / "work"
    for pos in range(last_record, sizes[-1]):
        clone(data, work)
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        tail(work).write_bytes(damaged)
        assert reopen(work, **OPTIONS) == states[-2], f"flipped byte {pos}"
        _assert_repaired(tail(work), original, sizes[-2], f"flipped byte {pos}")


def test_a_flipped_byte_before_the_last_record_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sizes, _ = _build(data, _saves())
    original = tail(data).read_bytes()
    last_record = record_offsets(original)[-1]
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
            reopen(work, **OPTIONS)
        assert tail(work).read_bytes() == damaged, "a corrupt log must be left as it is"


@pytest.mark.parametrize("where", ["in the preallocated part", "after it"])
def test_zeros_after_the_last_record_are_the_end_and_garbage_is_cut_off(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    sizes, states = _build(data, _saves())
    original = tail(data).read_bytes()
    work = tmp_path / "work"
    rng = random.Random(11)
    for junk in (bytes(4096), rng.randbytes(3000), b"\x00" * 9, b"\xff" * 5):
        clone(data, work)
        with tail(work).open("r+b") as f:
            f.seek(sizes[-1] if where == "in the preallocated part" else SEGMENT)
            f.write(junk)
        caplog.clear()
        assert reopen(work, **OPTIONS) == states[-1]
        content = tail(work).read_bytes()
        assert content[: sizes[-1]] == original[: sizes[-1]] and zeros_after(content, sizes[-1])
        repaired = "cut off a torn tail" in caplog.text
        assert repaired == any(junk), f"{len(junk)} bytes of junk: repaired {repaired}"


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
        reopen(data, segment_bytes=300)


def test_a_damaged_segment_header_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, **OPTIONS)[0] as storage:
        storage.save(HardState(1), [])
    content = bytearray(tail(data).read_bytes())
    content[FRAME.size + 3] ^= 0x10  # inside the SegmentHeader record
    tail(data).write_bytes(content)
    with pytest.raises(StorageError, match="valid record follows"):
        reopen(data, **OPTIONS)
    for torn in (content[:20], content[:20] + bytes(SEGMENT - 20)):  # only a torn header left
        tail(data).write_bytes(torn)
        with pytest.raises(StorageError, match="in the segment's header"):
            reopen(data, **OPTIONS)
    tail(data).write_bytes(bytes(SEGMENT))
    with pytest.raises(StorageError, match="empty WAL segment"):
        reopen(data, **OPTIONS)


def test_a_malformed_record_with_a_valid_checksum_is_corruption(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, **OPTIONS)[0] as storage:
        storage.save(HardState(1), make_entries(1, 1, 2))
    batch = Batch()
    batch._add(bytes([Kind.STATE]) + b"\x01\x02")  # a HardState of 2 bytes
    end = used_bytes(tail(data))
    with tail(data).open("r+b") as f:
        f.seek(end)
        f.write(batch.finish())
    with pytest.raises(StorageError, match=rf"offset {end}: malformed STATE record"):
        reopen(data, **OPTIONS)


# --- a crash in the middle of a save -------------------------------------------


def _appended_region_cases(tmp_path: Path, save: Save, model: LogModel, preallocated: bool) -> None:
    """Crash images of one save: the bytes it appended cut at every offset."""
    data = tmp_path / "data"
    before = clone(data, tmp_path / "before")
    old = reopen(clone(before, tmp_path / "old"), **OPTIONS)
    storage, _ = DiskStorage.open(data, **OPTIONS)
    save(storage, model)
    storage.close()
    new = model.restored()
    assert reopen(clone(data, tmp_path / "new"), **OPTIONS) == new
    old_end, new_end = used_bytes(tail(before)), used_bytes(tail(data))
    new_tail = tail(data).read_bytes()
    assert new_tail[:old_end] == tail(before).read_bytes()[:old_end] and new_end > old_end
    work = tmp_path / "work"
    for cut in range(old_end, new_end):
        clone(data, work)
        image = crash_image(new_tail, cut, preallocated)
        tail(work).write_bytes(image)
        # A save whose last bytes are zeros is whole in a preallocated image cut there.
        expected = new if image[:new_end] == new_tail[:new_end] else old
        assert reopen(work, **OPTIONS) == expected, f"cut at {cut} of {old_end}..{new_end}"
    shutil.rmtree(tmp_path / "before")


@IMAGES
def test_a_crash_mid_save_leaves_the_old_state_or_the_new(
    tmp_path: Path, preallocated: bool
) -> None:
    data = tmp_path / "data"
    model = LogModel()
    with DiskStorage.open(data, **OPTIONS)[0] as storage:
        es = make_entries(1, 1, 6, size=50)
        storage.save(HardState(1, 1, 3), es)
        model.save(HardState(1, 1, 3), es)

    def big_save(s: DiskStorage, m: LogModel) -> None:  # an overwrite plus a new term
        es = make_entries(2, 5, 12, size=50)
        s.save(HardState(2, 2, 4), es)
        m.save(HardState(2, 2, 4), es)

    _appended_region_cases(tmp_path, big_save, model, preallocated)

    def receive(s: DiskStorage, m: LogModel) -> None:  # a snapshot that restarts the log
        snap, es = snapshot(20, 3), make_entries(3, 21, 23, size=50)
        s.save(HardState(3, 0, 20), es, snap)
        m.save(HardState(3, 0, 20), es, snap)

    _appended_region_cases(tmp_path, receive, model, preallocated)


def test_a_crash_before_the_wal_references_a_snapshot_leaves_the_old_state(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, **OPTIONS)[0] as storage:
        storage.save(HardState(1, 1, 4), make_entries(1, 1, 6))
    before = clone(data, tmp_path / "before")
    old = reopen(clone(before, tmp_path / "old"), **OPTIONS)
    with DiskStorage.open(data, **OPTIONS)[0] as storage:
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
        assert reopen(work, **OPTIONS) == old, image
        assert list(snap_dir(work).iterdir()) == [], f"{image}: leftover not removed"


def test_a_crash_while_starting_a_segment_leaves_no_trace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DiskStorage.open(data, segment_bytes=200)[0] as storage:
        storage.save(HardState(1, 1, 0), make_entries(1, 1, 8, size=30))
    expected = reopen(clone(data, tmp_path / "ref"), segment_bytes=200)
    leftover = wal_dir(data) / "0000000000000001-0000000000000009.wal.abc.tmp"
    leftover.write_bytes(b"\x01\x02")
    assert reopen(data, segment_bytes=200) == expected
    assert not leftover.exists()
    assert len(segments(data)) == 1
