"""Failpoints (store/failpoints.py): how they are turned on, that the Raft simulator
(the same core and Ready plan as store/node.py) finds each planted Raft bug within a
seeded set of runs, and nothing with every failpoint off, and that
`answer-before-persist` loses an acknowledged write in real members killed before
their buffer is flushed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.local import LocalCluster
from harness.system import BadSystem, make_system
from store import failpoints as fp
from store.raft.core import Raft
from store.raft.simulator import simulate
from store.raft.types import Config, Entry, EntryType, HardState, Message, MsgType, Restored
from store.storage import DiskStorage

# Per raft failpoint: the simulator's settings and the seeds in which it must be found.
FOUND_IN = {
    "commit-own-match": (3, "default", range(0, 5)),
    "answer-before-persist": (3, "default", range(0, 5)),
    "vote-no-log-check": (3, "default", range(0, 20)),
    "lease-read-no-check-quorum": (3, "default", range(0, 20)),
    "forget-vote-on-restart": (3, "heavy", range(0, 60)),
    "apply-before-commit": (3, "default", range(0, 5)),
}
# The simulator has no pause: a deposed leader that keeps sending at its old term comes
# from a paused leader that resumes (the Docker runs, bench/detection.py).
NOT_IN_SIMULATOR = {"append-from-stale-term"}


@pytest.fixture(autouse=True)
def _all_off() -> Iterator[None]:
    fp.enable([])
    yield
    fp.enable([])


def test_failpoints_come_from_the_flag_or_else_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert fp.ACTIVE is None and not fp.on("commit-own-match")
    monkeypatch.setenv(fp.ENV, "commit-own-match, vote-no-log-check=on")
    assert fp.configure(None) == {"commit-own-match", "vote-no-log-check"}
    assert fp.on("vote-no-log-check") and {"commit-own-match", "vote-no-log-check"} == fp.ACTIVE
    assert fp.configure("lease-read-no-check-quorum") == {"lease-read-no-check-quorum"}
    assert fp.configure("vote-no-log-check=off") == set() and fp.ACTIVE is None
    with pytest.raises(fp.FailpointError, match=r"--failpoints: unknown failpoint 'nope'"):
        fp.configure("nope")
    monkeypatch.setenv(fp.ENV, "commit-own-match=sometimes")
    with pytest.raises(fp.FailpointError,
                       match=r"SPLITBRAIN_FAILPOINTS: failpoint commit-own-match: unknown action"):
        fp.configure(None)


def test_an_action_with_a_number_turns_a_failpoint_on_with_it() -> None:
    name = "answer-before-persist"
    assert fp.configure(f"{name}=flush(3600), commit-own-match") == {name, "commit-own-match"}
    assert fp.argument(name, "flush") == 3600.0 and fp.argument("commit-own-match", "flush") is None
    assert fp.described() == f"{name}=flush(3600),commit-own-match"
    assert fp.configure(f"{name}=flush( 0.05 )") == {name}
    assert fp.argument(name, "flush") == 0.05 and fp.described() == f"{name}=flush(0.05)"
    for later, described in ((f"{name}=on", name), (f"{name}=off", "")):
        fp.configure(f"{name}=flush(3600),{later}")
        assert fp.argument(name, "flush") is None and fp.described() == described, later
    with pytest.raises(fp.FailpointError, match="not on: answer-before-persist"):
        fp.enable(["commit-own-match"], {name: fp.Argument("flush", 1.0)})


@pytest.mark.parametrize(("item", "refusal"), [
    ("commit-own-match=flush(1)", r"commit-own-match: unknown action 'flush\(1\)'; use on, off$"),
    ("answer-before-persist=sleep(1)",
     r"answer-before-persist: unknown action 'sleep\(1\)'; use on, off, flush\(N\)$"),
    ("answer-before-persist=flush",
     r"answer-before-persist: unknown action 'flush'; use on, off, flush\(N\)$"),
    ("answer-before-persist=flush(1", r"answer-before-persist: unknown action 'flush\(1'"),
    *((f"answer-before-persist=flush({n})", rf"answer-before-persist: 'flush\({n}\)': flush "
       "takes a finite number >= 0, the seconds between the member's flushes")
      for n in ("", "x", "-1", "inf", "nan")),
])
def test_an_unknown_action_or_a_bad_number_is_refused(item: str, refusal: str) -> None:
    with pytest.raises(fp.FailpointError, match=r"^--failpoints: failpoint " + refusal):
        fp.configure(item)
    assert fp.ACTIVE is None and fp.ARGUMENTS == {}
    with pytest.raises(BadSystem, match=r"^failpoints: failpoint " + refusal):
        make_system("store", {"failpoints": [item]})


def test_every_raft_failpoint_has_a_simulator_schedule_or_a_reason() -> None:
    raft = {name for name, f in fp.FAILPOINTS.items() if f.raft}
    assert raft == set(FOUND_IN) | NOT_IN_SIMULATOR
    assert len(fp.FAILPOINTS) >= 8


@pytest.mark.parametrize("name", sorted(FOUND_IN))
def test_the_simulator_finds_each_raft_failpoint(name: str) -> None:
    nodes, faults, seeds = FOUND_IN[name]
    fp.enable([name])
    for seed in seeds:
        result = simulate(seed, nodes=nodes, faults=faults, check_seconds=5)
        if not result.ok:
            print(f"{name}: found with seed {seed}: {result.violation}")
            return
    pytest.fail(f"{name}: no violation in seeds {seeds.start}..{seeds.stop - 1} "
                f"({nodes} nodes, {faults} faults)")


@pytest.mark.parametrize("faults", ["default", "heavy"])
def test_with_every_failpoint_off_the_simulator_finds_nothing(faults: str) -> None:
    for seed in range(20):
        result = simulate(seed, nodes=3, faults=faults, check_seconds=5)
        assert result.ok, f"seed {seed}: {result.violation}\n  replay: {result.replay()}"


def test_a_spec_passes_its_failpoints_to_every_member(tmp_path: Path) -> None:
    system = make_system("store", {"failpoints": ["vote-no-log-check", "commit-own-match"]})
    with LocalCluster(3, system, tmp_path) as cluster:  # type: ignore[arg-type]
        for name in cluster.members:
            pid = cluster.member(name).pid
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"{fp.ENV}=commit-own-match,vote-no-log-check".encode() in environ, name
    system = make_system("store", {"failpoints": ["vote-no-log-check",
                                                  "answer-before-persist=flush(3600)"]})
    assert system.failpoints == ("answer-before-persist=flush(3600)", "vote-no-log-check")
    assert system.env[fp.ENV] == "answer-before-persist=flush(3600),vote-no-log-check"
    with pytest.raises(BadSystem, match="unknown failpoint 'vote-no-log'"):
        make_system("store", {"failpoints": ["vote-no-log"]})
    with pytest.raises(BadSystem, match="expected a list of names"):
        make_system("store", {"failpoints": "commit-own-match"})


# -- answer-before-persist in real members: the buffer a kill loses ----------------------

STARTUP_S = 30.0
APPLY_S = 10.0
KEY, VALUE = "/acknowledged", "kept-if-written"


def wal_holds(data_dir: Path, copy: Path, value: bytes) -> bool:
    """Whether the member's WAL, read back as a restart reads it, holds an entry with
    `value` (read from a copy: opening repairs a torn tail and takes the lock)."""
    shutil.copytree(data_dir, copy)
    storage, restored = DiskStorage.open(copy, preallocate_bytes=0)
    storage.close()
    return any(value in e.data for e in restored.entries)


@pytest.mark.parametrize(("failpoints", "survives"), [
    ("answer-before-persist=flush(3600)", False),
    ("", True),
], ids=["buffer-never-flushed", "failpoint-off"])
def test_an_acknowledged_write_is_lost_to_killing_every_member_only_with_the_buffer(
        tmp_path: Path, failpoints: str, survives: bool) -> None:
    """With the buffer flushed once an hour, a write every member acknowledged and applied
    is on no disk when all are SIGKILLed, and gone after they restart; off, it is kept."""
    with LocalCluster(3, "store", tmp_path / "cluster", env={fp.ENV: failpoints}) as cluster:
        leader = cluster.wait_ready(STARTUP_S)
        if failpoints:
            for name in cluster.members:
                assert f"failpoints on (planted bugs): {failpoints}" in (
                    cluster.logs(name).decode(errors="replace")), name
        with cluster.client(leader) as client:
            put = client.put(KEY, VALUE)
        assert put.status == 201, put

        def applied(name: str) -> bool:
            with cluster.client(name) as client:
                got = client.get(KEY)
            return got.status == 200 and got.json()["node"]["value"] == VALUE

        for name in cluster.members:
            cluster.wait_for(lambda n=name: applied(n), APPLY_S, f"{name} applies {KEY}")
        for name in cluster.members:
            cluster.kill(name)  # SIGKILL, and reaped before the next
        on_disk = [name for name in cluster.members if wal_holds(
            cluster.member(name).data_dir, tmp_path / f"{name}.copy", VALUE.encode())]
        for name in cluster.members:
            cluster.restart(name)
        leader = cluster.wait_ready(STARTUP_S)
        with cluster.client(leader) as client:
            got = client.get(KEY, quorum="true")
    if survives:
        assert len(on_disk) >= 2, f"the write is in the WAL of {on_disk} only"
        assert got.status == 200 and got.json()["node"]["value"] == VALUE, got
    else:
        assert on_disk == [], f"the WALs of {on_disk} hold the write: the buffer was flushed"
        assert got.status == 404, got


# -- apply-before-commit in one core: applied ahead of the commit, overwrite skipped ---------

def _ghost_entries(terms: list[int], start: int = 1) -> tuple[Entry, ...]:
    return tuple(Entry(t, start + i, EntryType.NORMAL, b"t%d-%d" % (t, start + i))
                 for i, t in enumerate(terms))


def _drain(core: Raft) -> list[Entry]:
    """Handle every Ready as a driver would (persisted at once); what it applied."""
    applied: list[Entry] = []
    while core.has_ready():
        rd = core.ready()
        applied += rd.committed
        core.advance(rd)
    return applied


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_apply_before_commit_applies_a_followers_disk_and_skips_what_overwrites_it(
        on: bool) -> None:
    fp.enable(["apply-before-commit"] if on else [])
    old = _ghost_entries([1, 2, 2])
    follower = Raft(Config(id=2, peers=(1, 2, 3), seed=2),
                    Restored(HardState(term=2, commit=1), entries=old))
    first = _drain(follower)
    assert first == (list(old) if on else [old[0]])
    if on:  # applied past its commit: no snapshot of that state, the log is kept whole
        assert follower.compact(3, b"state", keep=0) is None and follower.first_index == 1
    # A leader of term 3 overwrites entries 2 and 3, then commits them and entry 4.
    new = _ghost_entries([3, 3, 3], 2)
    follower.step(Message(MsgType.APPEND, 2, 1, 3, log_term=1, index=1, entries=new[:2],
                          commit=1))
    follower.step(Message(MsgType.APPEND, 2, 1, 3, log_term=3, index=3, entries=new[2:],
                          commit=4))
    later = _drain(follower)
    assert later == ([new[2]] if on else list(new)), "on: entries 2 and 3 are skipped"
    assert follower.commit == 4 and follower.term_at(2) == 3
    assert follower.compact(4, b"state", keep=0) is not None and follower.first_index == 5
