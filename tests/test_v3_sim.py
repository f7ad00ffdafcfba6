"""The Raft simulator driving the v3 state machine: writes and compare-and-sets as v3
txns, reads as ranges, compactions as Raft commands, through crashes, partitions and
power losses; every run's history must be linearizable, and every member's revision
must agree per log index and never go back (``RAFT_SIM_SEEDS=N`` runs N seeds)."""

from __future__ import annotations

import os

import pytest

from store.raft.simulator import SimResult, simulate
from store.v3.state import V3Store


def _seeds(default: int) -> range:
    wanted = os.environ.get("RAFT_SIM_SEEDS")
    return range(int(wanted) // 5 if wanted else default)


def _run(seeds: range, **kw: object) -> list[SimResult]:
    out = []
    for seed in seeds:
        res = simulate(seed, machine="v3", **kw)  # type: ignore[arg-type]
        assert res.ok, f"seed {seed}: {res.violation}\nreplay: {res.replay()}"
        assert res.linearizable is True, f"seed {seed}: {res.linearizable}\n{res.replay()}"
        out.append(res)
    return out


@pytest.mark.parametrize(("faults", "seeds"), [("default", 100), ("heavy", 25)])
def test_v3_commands_stay_linearizable_through_faults(faults: str, seeds: int) -> None:
    results = _run(_seeds(seeds), faults=faults)
    # the runs exercise what they are meant to
    assert sum(r.v3_compactions for r in results) > 0
    assert sum(r.snapshots_installed for r in results) > 0
    assert sum(r.restarts for r in results) > 0
    assert sum(r.ops["ok"] for r in results) > 0 and sum(r.ops["fail"] for r in results) > 0


def test_a_txn_that_ignores_its_compare_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(V3Store, "_compare", lambda self, c, rev: True)
    caught = [s for s in range(20) if simulate(s, machine="v3").linearizable is False]
    assert caught, "a cas that always succeeds went unnoticed in 20 runs"


def test_the_replay_command_names_the_machine() -> None:
    assert simulate(0, machine="v3", steps=200).replay().endswith("--machine v3")
