"""DiskStorage as the node driver uses it: layout, round trips, overwrites, rotation,
group commit, the data-dir lock, member metadata, and a model-based property test."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.raft.types import HardState, Restored
from store.storage import DiskStorage, StorageError
from tests.storage_support import (
    LogModel,
    clone,
    make_entries,
    reopen,
    segments,
    snap_dir,
    snapshot,
    tail,
    used_bytes,
)


def test_new_data_dir_gets_etcd_layout_and_empty_state(tmp_path: Path) -> None:
    data = tmp_path / "node1"
    storage, restored = DiskStorage.open(data)
    storage.close()
    assert restored == Restored()
    assert [p.name for p in segments(data)] == ["0000000000000000-0000000000000001.wal"]
    assert list(snap_dir(data).iterdir()) == []
    assert reopen(data) == Restored()


def test_entries_and_hard_state_round_trip(tmp_path: Path) -> None:
    model = LogModel()
    with DiskStorage.open(tmp_path)[0] as storage:
        for hs, es in [
            (HardState(1, 1, 0), make_entries(1, 1, 5)),
            (HardState(1, 1, 3), []),
            (None, make_entries(1, 6, 9, size=0)),
            (HardState(2, 0, 9), make_entries(2, 10, 10, size=5000)),
        ]:
            storage.save(hs, es)
            model.save(hs, es)
    assert reopen(tmp_path) == model.restored()
    assert reopen(tmp_path).entries[-1].data == make_entries(2, 10, 10, size=5000)[0].data


def test_later_entries_overwrite_the_tail_from_their_index(tmp_path: Path) -> None:
    with DiskStorage.open(tmp_path, segment_bytes=400)[0] as storage:
        storage.save(HardState(1, 1, 2), make_entries(1, 1, 10))
        storage.save(HardState(2, 2, 2), make_entries(2, 6, 7))  # drops 8..10 of term 1
        storage.save(None, make_entries(2, 8, 8))
        storage.save(HardState(3, 3, 2), make_entries(3, 4, 4))  # drops 5..8
    restored = reopen(tmp_path, segment_bytes=400)
    assert [(e.index, e.term) for e in restored.entries] == [(1, 1), (2, 1), (3, 1), (4, 3)]
    assert restored.entries == (*make_entries(1, 1, 3), *make_entries(3, 4, 4))
    assert restored.hard_state == HardState(3, 3, 2)
    assert len(segments(tmp_path)) > 1  # the overwrites crossed segment boundaries


def test_save_rejects_entries_that_do_not_continue_the_log(tmp_path: Path) -> None:
    with DiskStorage.open(tmp_path)[0] as storage:
        storage.save(HardState(2, 1, 0), make_entries(2, 1, 3))
        before = tail(tmp_path).read_bytes()
        with pytest.raises(ValueError, match="gap"):
            storage.save(HardState(2, 1, 3), make_entries(2, 5, 6))
        with pytest.raises(ValueError, match="term 1 after term 2"):
            storage.save(None, make_entries(1, 4, 4))
        with pytest.raises(ValueError, match="not contiguous"):
            storage.save(None, [*make_entries(2, 4, 4), *make_entries(2, 6, 6)])
        assert tail(tmp_path).read_bytes() == before  # nothing was written
        storage.save(None, make_entries(2, 4, 4))  # and the log is still usable
    assert [e.index for e in reopen(tmp_path).entries] == [1, 2, 3, 4]
    assert reopen(tmp_path).hard_state == HardState(2, 1, 0)


def test_an_empty_save_does_no_io(tmp_path: Path) -> None:
    with DiskStorage.open(tmp_path)[0] as storage:
        before = storage.stats.fsyncs
        storage.save(None, [])
        assert storage.stats.fsyncs == before
        assert storage.stats.saves == 0


def test_a_save_is_one_write_and_one_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The segment is preallocated, so an append changes no metadata that fsync would
    have to commit as well (see test_storage_prealloc.py for the fsync fallback)."""
    calls: list[str] = []
    real_write, real_fsync, real_fdatasync = os.write, os.fsync, os.fdatasync

    def write(fd: int, data: bytes) -> int:
        calls.append("write")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    with DiskStorage.open(tmp_path)[0] as storage:
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        storage.save(HardState(1, 1, 0), make_entries(1, 1, 64, size=100))
        assert calls == ["write", "fdatasync"]
        calls.clear()
        storage.save(HardState(1, 1, 64), make_entries(1, 65, 65))
        assert calls == ["write", "fdatasync"]
        monkeypatch.undo()
    assert len(reopen(tmp_path).entries) == 65


def test_segments_rotate_over_the_size_limit(tmp_path: Path) -> None:
    limit = 2048
    model = LogModel()
    with DiskStorage.open(tmp_path, segment_bytes=limit)[0] as storage:
        for i in range(1, 200, 4):
            es = make_entries(1, i, i + 3, size=100)
            storage.save(HardState(1, 1, i - 1), es)
            model.save(HardState(1, 1, i - 1), es)
        created = storage.stats.segments_created
    segs = segments(tmp_path)
    assert created == len(segs) - 1 > 5
    names = [re.fullmatch(r"([0-9a-f]{16})-([0-9a-f]{16})\.wal", p.name) for p in segs]
    assert all(names)
    seqs = [int(m.group(1), 16) for m in names if m]
    firsts = [int(m.group(2), 16) for m in names if m]
    assert seqs == list(range(len(segs)))
    assert firsts == sorted(firsts) and firsts[0] == 1
    one_save = 4 * (9 + 18 + 100) + 9 + 25
    # Each is preallocated to the limit, and a full one holds up to one save more.
    assert all(limit <= p.stat().st_size <= limit + one_save for p in segs)
    assert all(limit <= used_bytes(p) == p.stat().st_size for p in segs[:-1])
    assert reopen(tmp_path, segment_bytes=limit) == model.restored()


def test_a_second_open_of_the_same_dir_is_refused(tmp_path: Path) -> None:
    storage, _ = DiskStorage.open(tmp_path)
    with pytest.raises(StorageError, match="in use"):
        DiskStorage.open(tmp_path)
    storage.close()
    storage.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        storage.save(HardState(1), [])
    DiskStorage.open(tmp_path)[0].close()


def test_member_metadata_round_trips_and_is_replaced_atomically(tmp_path: Path) -> None:
    meta = {"name": "n1", "member_id": 0x8E9E05C52164694D, "peers": {"n1": "http://127.0.0.1:2380"}}
    with DiskStorage.open(tmp_path)[0] as storage:
        assert storage.read_meta() is None
        storage.write_meta(meta)
        assert storage.read_meta() == meta
        storage.write_meta({**meta, "cluster_id": 7})
    leftovers = list((tmp_path / "member").glob("*.tmp"))
    assert leftovers == []
    (tmp_path / "member" / "meta.json.abc.tmp").write_text('{"half": ')  # interrupted write
    with DiskStorage.open(tmp_path)[0] as storage:
        assert storage.read_meta() == {**meta, "cluster_id": 7}
        assert list((tmp_path / "member").glob("*.tmp")) == []
        (tmp_path / "member" / "meta.json").write_text("{not json")
        with pytest.raises(StorageError, match=r"meta\.json"):
            storage.read_meta()


def test_saves_and_compactions_from_two_threads(tmp_path: Path) -> None:
    options = {"segment_bytes": 2048, "keep_snapshots": 2}
    storage, _ = DiskStorage.open(tmp_path, **options)
    for i in range(1, 501, 20):
        storage.save(HardState(1, 1, i - 1), make_entries(1, i, i + 19, size=20))
    appended = [make_entries(1, i, i + 3, size=20) for i in range(501, 901, 4)]
    errors: list[BaseException] = []

    def appender() -> None:
        try:
            for es in appended:
                storage.save(HardState(1, 1, es[0].index - 1), es)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=appender)
    thread.start()
    for index in range(50, 501, 50):
        storage.save_snapshot(snapshot(index, 1))
    thread.join(timeout=60)
    assert not thread.is_alive() and errors == []
    assert storage.stats.segments_dropped > 0
    storage.close()
    restored = reopen(tmp_path, **options)
    assert restored.snapshot == snapshot(500, 1)
    assert restored.entries == tuple(e for es in appended for e in es)


# --- model-based: random saves, overwrites, snapshots and restarts ---------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 6), st.booleans()),
        st.tuples(st.just("overwrite"), st.integers(1, 6), st.integers(0, 8)),
        st.tuples(st.just("state"), st.integers(0, 3), st.integers(0, 3)),
        st.tuples(st.just("compact"), st.integers(0, 6), st.integers(0, 0)),
        st.tuples(st.just("receive"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("reopen"), st.integers(0, 0), st.integers(0, 0)),
    ),
    min_size=1,
    max_size=30,
)


def _check_fallback(data: Path, scratch: Path, model: LogModel, options: dict[str, int]) -> None:
    """With the newest snapshot file damaged, a reopen must use the previous one."""
    copy = clone(data, scratch)
    newest = snap_dir(copy) / (
        f"{model.snapshots[-1].meta.term:016x}-{model.snapshots[-1].meta.index:016x}.snap"
    )
    damaged = bytearray(newest.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    newest.write_bytes(damaged)
    expected = model.restored(fallback=1)
    if expected is None:
        with pytest.raises(StorageError, match="the WAL holds the log from index"):
            reopen(copy, **options)
    else:
        assert reopen(copy, **options) == expected


@settings(max_examples=200)
@given(ops=_ops)
def test_reopen_returns_what_the_model_says(tmp_path_factory: pytest.TempPathFactory, ops) -> None:
    data = tmp_path_factory.mktemp("model")
    scratch = tmp_path_factory.mktemp("fallback")
    options = {"segment_bytes": 384, "keep_snapshots": 2}
    model = LogModel()
    term = 1
    storage, _ = DiskStorage.open(data, **options)
    try:
        for step, (kind, a, b) in enumerate(ops):
            if kind == "append":
                term += b
                # commit what was there before (followers learn it one append later)
                hs = HardState(term, 1, max(model.hard_state.commit, model.last))
                es = make_entries(term, model.last + 1, model.last + a, size=40, seed=step)
                storage.save(hs, es)
                model.save(hs, es)
            elif kind == "overwrite":
                floor = max(model.hard_state.commit, model.snapshot_index)
                first = max(floor + 1, model.last + 1 - b)
                term += 1
                es = make_entries(term, first, first + a - 1, size=10, seed=step)
                storage.save(HardState(term, 2, model.hard_state.commit), es)
                model.save(HardState(term, 2, model.hard_state.commit), es)
            elif kind == "state":
                # commit moves forward, within the log
                commit = min(model.last, model.hard_state.commit + a + b)
                hs = HardState(term, a, max(commit, model.hard_state.commit))
                storage.save(hs, [])
                model.save(hs, [])
            elif kind == "compact":
                floor = model.snapshot_index
                index = min(model.hard_state.commit, floor + a)
                held = model.term_at(index)
                if index > floor and held is not None:
                    snap = snapshot(index, held)
                    storage.save_snapshot(snap)
                    model.compact(snap)
            elif kind == "receive":
                # the core installs only snapshots beyond its commit index
                index = max(model.hard_state.commit, model.snapshot_index) + 1 + a
                held = model.term_at(index)
                snap_term = held if (b and held is not None) else term + 1
                term = max(term, snap_term)
                snap = snapshot(index, snap_term)
                hs = HardState(term, 0, index)
                storage.save(hs, [], snap)
                model.save(hs, [], snap)
            else:
                storage.close()
                if model.snapshots:
                    _check_fallback(data, scratch / "copy", model, options)
                storage, restored = DiskStorage.open(data, **options)
                assert restored == model.restored(), f"after step {step}"
        storage.close()
        storage, restored = DiskStorage.open(data, **options)
        assert restored == model.restored()
        assert len(storage.snapshots) <= 2
    finally:
        storage.close()


def test_the_wal_can_live_in_its_own_directory(tmp_path: Path) -> None:
    data, wal = tmp_path / "data", tmp_path / "wal"
    with DiskStorage.open(data, wal_dir=wal)[0] as storage:
        storage.save(HardState(1, 1, 3), make_entries(1, 1, 3))
    assert [p.suffix for p in wal.iterdir()] == [".wal"]
    assert not (data / "member" / "wal").exists()
    storage, restored = DiskStorage.open(data, wal_dir=wal)
    storage.close()
    assert restored.hard_state == HardState(1, 1, 3) and len(restored.entries) == 3
