"""The Raft core under the deterministic simulator: many seeds, every invariant.

Seed counts (2,800 runs) fit a ~3 minute budget on 2 cores; ``RAFT_SIM_SEEDS=N`` runs N seeds
in the 3-node suite (N/5 in the 5-node and heavy-fault suites, N/100 long runs)
instead. A failure names its seed and the command that replays it.
"""

from __future__ import annotations

import os

import pytest

from checker.history import UNOBSERVED
from store.raft.core import Raft
from store.raft.plan import Durable, Plan, plan_ready
from store.raft.sim.history import History
from store.raft.simulator import SimResult, main, simulate
from store.raft.types import EntryType, Message, MsgType, Ready, Role

CHUNK = 50


def _seeds(default: int, share: float = 1.0) -> int:
    wanted = os.environ.get("RAFT_SIM_SEEDS")
    return max(1, int(int(wanted) * share)) if wanted else default


def _chunks(total: int) -> list[range]:
    return [range(lo, min(lo + CHUNK, total)) for lo in range(0, total, CHUNK)]


def _run_chunk(seeds: range, **kw) -> list[SimResult]:
    results = []
    for seed in seeds:
        res = simulate(seed, **kw)
        assert res.ok, f"seed {seed}: {res.violation}\nreplay: {res.replay()}"
        assert res.linearizable is True, (
            f"seed {seed}: the checker said {res.linearizable}\nreplay: {res.replay()}"
        )
        results.append(res)
    return results


def _ids(chunks: list[range]) -> list[str]:
    return [f"seeds-{r.start}-{r.stop - 1}" for r in chunks]


THREE = _chunks(_seeds(2000))
FIVE = _chunks(_seeds(400, 0.2))
HEAVY = _chunks(_seeds(400, 0.2))


@pytest.mark.parametrize("seeds", THREE, ids=_ids(THREE))
def test_three_nodes(seeds: range) -> None:
    results = _run_chunk(seeds, nodes=3)
    if len(results) < 20:
        return
    # The runs exercise what they are meant to (a chunk is many runs).
    assert sum(r.restarts for r in results) > 0
    assert sum(r.snapshots_installed for r in results) > 0
    assert sum(r.elections for r in results) > len(results)
    assert sum(r.dropped for r in results) > 0 and sum(r.duplicated for r in results) > 0
    assert sum(r.ops["ok"] for r in results) > 20 * len(results)
    # ... including the order production uses: leaders that send before their
    # fsync, and crash between the two; and every node crashing at once.
    assert sum(r.early_sends for r in results) > 0
    assert sum(r.crashes_after_early_send for r in results) > 0
    assert sum(r.power_losses for r in results) > 0


@pytest.mark.parametrize("seeds", FIVE, ids=_ids(FIVE))
def test_five_nodes(seeds: range) -> None:
    results = _run_chunk(seeds, nodes=5)
    assert len(results) < 20 or sum(r.snapshots_installed for r in results) > 0


@pytest.mark.parametrize("seeds", HEAVY, ids=_ids(HEAVY))
def test_heavy_faults(seeds: range) -> None:
    _run_chunk(range(10_000 + seeds.start, 10_000 + seeds.stop), nodes=3, faults="heavy")


LONG = _chunks(_seeds(10, 0.01))


@pytest.mark.parametrize("seeds", LONG, ids=_ids(LONG))
def test_long_runs_five_nodes_heavy_faults(seeds: range) -> None:
    _run_chunk(
        range(20_000 + seeds.start, 20_000 + seeds.stop), nodes=5, steps=20_000, faults="heavy"
    )


def test_no_faults_means_no_indeterminate_operations() -> None:
    res = simulate(7, faults="none")
    assert res.ok, res.violation
    assert res.ops["info"] == 0 and res.restarts == 0 and res.dropped == 0
    assert res.elections == 1


def test_a_seed_replays_exactly() -> None:
    def counts(r: SimResult) -> tuple[int, ...]:
        return (r.events, r.elections, r.messages, r.dropped, r.restarts, r.virtual_ms)

    a, b = simulate(42), simulate(42)
    assert a.history == b.history and a.log == b.log and counts(a) == counts(b)
    assert simulate(43).history != a.history


def test_cli_runs_seeds_and_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "3:5", "--nodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 seeds, 3 nodes, default faults: 0 failed" in out


def test_replay_command_names_the_run() -> None:
    res = SimResult(seed=17, nodes=5, faults="heavy")
    assert res.replay() == "python -m store.raft.simulator --seeds 17:18 --nodes 5 --faults heavy"


def test_resolved_history_settles_indeterminate_writes() -> None:
    h = History()
    late = h.invoke(1, 0, 0, "write", "k", 1, node=1, tag=1)
    h.complete(5, late, "info", error="timeout")
    h.was_applied(8, 1, ok=True)  # applied after the client gave up
    lost = h.invoke(2, 1, 1, "write", "k", 2, node=1, tag=2)
    h.complete(6, lost, "info", error="crashed")  # never applied anywhere
    early = h.invoke(3, 2, 2, "cas", "k", [1, 3], node=2, tag=3)
    h.was_applied(4, 3, ok=False)  # its node applied it and found no match
    h.complete(9, early, "info", error="timeout")
    read = h.invoke(10, 3, 3, "read", "k", UNOBSERVED, node=2, tag=b"r")
    h.complete(11, read, "info")
    observed = [(o.type, o.f, o.value) for o in h.observed() if o.type != "invoke"]
    assert observed == [
        ("info", "write", 1),
        ("info", "write", 2),
        ("info", "cas", [1, 3]),
        ("info", "read", UNOBSERVED),
    ]
    done = [(o.time // 1_000_000, o.type, o.f) for o in h.resolved() if o.type != "invoke"]
    assert done == [
        (6, "fail", "write"),
        (8, "ok", "write"),
        (9, "fail", "cas"),
        (11, "info", "read"),
    ]


# -- the simulator catches broken cores ----------------------------------------


class VotesTwice(Raft):
    """Grants every vote its log allows, even after voting for someone else."""

    __slots__ = ()

    def _may_vote_for(self, m: Message) -> bool:
        return True


class IgnoresLogsWhenVoting(Raft):
    """Votes for candidates whose logs are behind its own."""

    __slots__ = ()

    def _step_vote(self, m: Message) -> None:
        resp = MsgType.VOTE_RESP if m.type == MsgType.VOTE else MsgType.PREVOTE_RESP
        if self._may_vote_for(m):
            self._send(resp, m.frm, m.term)
            if m.type == MsgType.VOTE:
                self._vote = m.frm
        else:
            self._send(resp, m.frm, self.term, reject=True)


class ReadsWithoutQuorum(Raft):
    """Serves read-index requests at once, without confirming leadership."""

    __slots__ = ()

    def _leader_read(self, context: bytes, frm: int) -> None:
        self._serve_read(context, frm, self.commit)


@pytest.mark.parametrize(
    ("core", "symptom"),
    [
        (VotesTwice, "election safety"),
        (IgnoresLogsWhenVoting, "leader completeness"),
        (ReadsWithoutQuorum, "not linearizable"),
    ],
)
def test_the_simulator_catches_a_broken_core(core: type[Raft], symptom: str) -> None:
    seen = []
    for seed in range(100):
        res = simulate(seed, core_factory=core)
        if not res.ok:
            seen.append(res.violation or "")
            if symptom in seen[-1]:
                return
    pytest.fail(f"{core.__name__}: no seed in 0..99 showed {symptom!r}; saw {seen[:3]}")


# -- ... and broken drivers: the early path ------------------------------------


class CountsItsOwnUnsyncedLog(Raft):
    """A leader that counts an entry toward a quorum as soon as it appends it,
    before its driver has it on disk (harmless while leaders only send after their
    fsync; wrong once they send before it)."""

    __slots__ = ()

    def _append(self, kind: EntryType, data: bytes) -> None:
        super()._append(kind, data)
        self._prs[self._id].maybe_update(self._log.last_index)


def acks_before_fsync(rd: Ready, role: Role, durable: Durable) -> Plan:
    """A driver that sends every message before its fsync: append answers and
    votes promise what a crash can still take back."""
    plan = plan_ready(rd, role, durable)
    return Plan(plan.fsync, plan.send_now + plan.send_after, [], plan.apply_now, plan.apply_after)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"core_factory": CountsItsOwnUnsyncedLog}, "a leader counting its unsynced log"),
        ({"planner": acks_before_fsync}, "a driver acknowledging before its fsync"),
    ],
)
def test_the_simulator_catches_commits_not_durable_on_a_quorum(kw: dict, name: str) -> None:
    seen = []
    for seed in range(200):
        res = simulate(seed, check_seconds=2.0, **kw)
        if not res.ok:
            seen.append(f"seed {seed}: {res.violation}")
            if "durability" in seen[-1]:
                return
    pytest.fail(f"{name}: no seed in 0..199 showed a commit off a quorum's disks: {seen[:3]}")


def test_crashes_between_an_early_send_and_the_fsync_happen() -> None:
    results = [simulate(seed) for seed in range(30)]
    assert sum(r.crashes_after_early_send for r in results) > 0, "no leader died mid-write"
