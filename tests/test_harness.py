"""`splitbrain run` end to end: real clusters, real faults, real verdicts.

The Docker tests build (or reuse) the node image and start containers; the etcd ones
need etcd in the image (always) and, for the local backend, on this host. Without
Docker they skip, saying why, except under CI (CI=true), where they must run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.history import NEMESIS
from checker.linearizable import CheckResult
from harness.progress import Progress
from harness.results import EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID
from harness.runner import run
from harness.spec import load, override, parse

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261130"))


def docker_client() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
        return client
    except Exception as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Docker is needed under CI and is not reachable: {e}")
        pytest.skip(f"Docker is not reachable: {e}")


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    client = docker_client()
    yield client
    assert_nothing_left(client)


def assert_nothing_left(client: Any, run_id: str | None = None) -> None:
    """No container, network or volume of this run (or, without a run id, of any run that
    this process or a process now gone made) is left. Resources of other live processes
    (a run going on beside the tests) are theirs to remove."""
    from harness.labels import OWNER, owner_alive, owner_here

    flt = {"label": ["splitbrain" if run_id is None else f"splitbrain.run={run_id}"]}

    def ours(labels: dict[str, str] | None) -> bool:
        owner = (labels or {}).get(OWNER)
        return owner == owner_here() or not owner_alive(owner)

    containers = [c.name for c in client.containers.list(all=True, filters=flt) if ours(c.labels)]
    networks = [n.name for n in client.networks.list(filters=flt) if ours(n.attrs.get("Labels"))]
    volumes = [v.name for v in client.volumes.list(filters=flt) if ours(v.attrs.get("Labels"))]
    assert not containers and not networks and not volumes, (
        f"left behind: {containers} {networks} {volumes}"
    )


def history(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def results_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())


def test_our_store_stays_linearizable_across_leader_kills(docker: Any, tmp_path: Path) -> None:
    spec = parse({
        "name": "store-kills", "system": "store", "nodes": 3, "concurrency": 6,
        "time_limit": 30, "seed": SEED, "results": str(tmp_path),
        "workload": {"name": "register", "ops_per_key": 150},
        "nemesis": {"faults": ["kill"], "kill": {"targets": ["leader"]},
                    "schedule": {"fault": 3, "heal": 6}},
    })  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    summary = f"seed {SEED}, results in {outcome.directory}"
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_VALID, f"{summary}: {json.dumps(results)[:3000]}"
    assert results["valid"] is True and results["checkers"]["linearizable"]["valid"] is True
    ops = history(outcome.directory)
    kills = [op for op in ops if op["process"] == NEMESIS and op["f"] == "kill" and
             isinstance(op.get("value"), dict)]  # fmt: skip
    assert len(kills) >= 2, f"{summary}: expected at least two leader kills, got {kills}"
    for kill in kills:
        assert kill["value"]["nodes"] == [kill["value"]["leader"]], f"{summary}: {kill}"
        before = [op for op in ops if op["type"] == "ok" and op["index"] < kill["index"]]
        after = [op for op in ops if op["type"] == "ok" and op["index"] > kill["index"]]
        assert before and after, f"{summary}: no ok operation around the kill {kill}"
    written = {p.name for p in (outcome.directory / "nodes").iterdir()}
    assert written == {"n1.log", "n2.log", "n3.log"}
    assert results["cluster"]["backend"] == "docker" and results["image"]["id"].startswith(
        "sha256:"
    )
    assert_nothing_left(docker, outcome.results.run_id)


def etcd_spec(name: str, tmp_path: Path) -> Any:
    spec = load(ROOT / "specs" / f"{name}.yaml")
    return override(spec, nodes=3, concurrency=6, time_limit=15, seed=SEED,
                    results=str(tmp_path))  # fmt: skip


def test_etcd_with_quorum_reads_is_linearizable_under_partitions(
    docker: Any, tmp_path: Path
) -> None:
    outcome = run(etcd_spec("etcd-quorum-reads", tmp_path), Progress(quiet=True))
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_VALID, f"seed {SEED}: {json.dumps(results)[:3000]}"
    assert results["system"]["version"].startswith("3.4")
    assert results["image"]["tag"].startswith("splitbrain/debian-etcd-server:")  # etcd only
    assert results["stats"]["ops"]["read"]["ok"] > 100
    assert any(f["f"] == "partition" for f in results["stats"]["faults"])
    assert_nothing_left(docker, outcome.results.run_id)


def test_etcd_default_reads_are_found_stale(docker: Any, tmp_path: Path) -> None:
    """Jepsen's 2014 finding: etcd serves default GETs from a member's own state."""
    outcome = run(etcd_spec("etcd-stale-reads", tmp_path), Progress(quiet=True))
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_INVALID, f"seed {SEED}: {json.dumps(results)[:3000]}"
    # Each invalid key names the operation that comes too late: a stale read, or a write
    # or cas whose value's time overlaps the stale value's. Some must be reads, explained so.
    checked = CheckResult.from_json(results["checkers"]["linearizable"])
    briefs = [b for b in (k.brief() for k in checked.first_violations()) if b is not None]
    reads = [b for b in briefs if b.op.operation is not None and b.op.operation.f == "read"]
    assert reads, f"seed {SEED}: no stale read named: {[b.explanation for b in briefs]}"
    assert all("read" in b.explanation for b in reads), [b.explanation for b in reads]
    assert results["image"]["tag"].startswith("splitbrain/debian-etcd-server:")  # etcd only
    for name in ("n1", "n2", "n3"):  # an invalid run keeps the members' data (collect_data)
        data = outcome.directory / "nodes" / name / "data"
        assert (data / "member" / "wal").is_dir(), sorted(map(str, data.rglob("*")))[:20]
    assert not any("data directory" in note for note in results["notes"]), results["notes"]
    assert_nothing_left(docker, outcome.results.run_id)


def test_a_system_that_serves_stale_reads_is_caught(tmp_path: Path) -> None:
    """A user's own system (examples/laggy_kv: asynchronous replication, local reads) on
    the local backend, named as module:Class: splitbrain must find its stale reads."""
    spec = parse({
        "name": "laggy", "system": "examples.laggy_kv.system:LaggyKV", "backend": "local",
        "nodes": 3, "concurrency": 6, "time_limit": 6, "seed": SEED, "results": str(tmp_path),
        "workload": {"name": "register", "ops_per_key": 60},
    })  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    assert outcome.exit_code == EXIT_INVALID, f"seed {SEED}: {json.dumps(results)[:3000]}"
    checked = results["checkers"]["linearizable"]
    assert checked["valid"] is False and checked["invalid_keys"]
    example = checked["keys"][0]["counterexample"]
    assert example["op"]["f"] == "read", example


def run_cli(spec: dict[str, Any], tmp_path: Path) -> subprocess.Popen[str]:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--results", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def test_sigint_heals_tears_down_and_still_checks(docker: Any, tmp_path: Path) -> None:
    spec = {
        "name": "interrupted", "system": "store", "nodes": 3, "concurrency": 4,
        "time_limit": 120, "seed": SEED,
        "nemesis": {"faults": ["kill"], "schedule": {"fault": 60, "heal": 2}},
    }  # fmt: skip
    process = run_cli(spec, tmp_path)
    run_dir = tmp_path / "latest"
    try:

        def killed() -> bool:
            path = run_dir / "history.jsonl"
            if process.poll() is not None:
                raise AssertionError(f"the run ended early: {process.communicate()[0]}")
            if not path.exists():
                return False
            return any('"f":"kill","value":{' in line for line in path.read_text().splitlines())

        wait_for(killed, 180, "a node killed by the nemesis")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    results = results_of(run_dir.resolve())
    assert process.returncode == EXIT_UNKNOWN, output
    assert results["interrupted"] is True and "interrupted" in output
    assert results["checkers"]["linearizable"]["valid"] is True, output
    ops = history(run_dir.resolve())
    heal = [op for op in ops if op["process"] == NEMESIS and op["f"] == "heal"]
    assert len(heal) == 2 and heal[1]["value"], f"the kill was not healed: {heal}"
    assert_nothing_left(docker, results["run_id"])
    paused = docker.containers.list(filters={"label": "splitbrain", "status": "paused"})
    assert not paused


def test_leftovers_of_a_run_whose_process_is_gone_are_removed(docker: Any) -> None:
    from harness.docker import remove_leftovers
    from harness.labels import labels

    dead = labels("leftover-test", "999999999:1")  # no such process
    network = docker.networks.create("splitbrain-leftover-test", internal=True, labels=dead)
    volume = docker.volumes.create("splitbrain-leftover-test", labels=dead)
    said: list[str] = []
    try:
        assert remove_leftovers(docker, said.append) >= 2
    finally:
        for thing in (network, volume):
            with contextlib.suppress(Exception):
                thing.remove()
    assert any("splitbrain-leftover-test" in line for line in said), said
    assert_nothing_left(docker, "leftover-test")


def test_a_fault_that_fails_at_run_time_is_recorded_and_said(docker: Any, tmp_path: Path) -> None:
    """The leader killed, then a pause of every node: a pause cannot reach a node that is
    down, so it fails there while the run goes on, and pauses the others. The failure is
    in the history (the pause's completion carries the error and the nodes it did
    pause), in results.json notes and in the CLI's output; the final heal resumes the
    nodes paused; the verdict is still the checker's."""
    steps = [{"at": 1, "f": "kill", "value": "leader"},
             {"at": 2, "f": "pause", "value": "all"}]
    spec = {
        "name": "failing-fault", "system": "store", "nodes": 3, "concurrency": 3,
        "time_limit": 4, "seed": SEED,
        "nemesis": {"faults": ["kill", "pause"], "schedule": {"kind": "list", "steps": steps}},
    }  # fmt: skip
    proc = run_cli(spec, tmp_path)
    out, _ = proc.communicate(timeout=300)
    run_dir = (tmp_path / "latest").resolve()
    results = results_of(run_dir)
    assert "Traceback" not in out, out
    assert proc.returncode == {True: 0, False: 1}.get(results["valid"], 2), out
    nemesis = [op for op in history(run_dir) if op["process"] == NEMESIS]
    done = nemesis[1::2]  # each nemesis operation: the request, then what was done
    kill = next(op for op in done if op["f"] == "kill")
    pause = next(op for op in done if op["f"] == "pause")
    (leader,) = kill["value"]["nodes"]
    assert "error" not in kill and kill["value"]["leader"] == leader, kill
    others = sorted({"n1", "n2", "n3"} - {leader})
    assert pause["value"]["nodes"] == others, pause
    assert pause["error"] == f"{leader}: NodeDown: {leader} is down", pause
    heal = done[-1]
    assert heal["f"] == "heal" and heal["value"] == {"kill": [leader], "pause": others}, heal
    note = "1 of 2 faults took effect; 1 failed (1 in part): pause all at 2.0 s: "
    assert [n for n in results["notes"] if n.startswith(note)], (results["notes"], out)
    assert f"note: {note}" in out
    assert_nothing_left(docker, results["run_id"])
    # Checked again by `splitbrain report`: the same note, once.
    report = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run_dir)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert report.returncode == proc.returncode, report
    notes = results_of(run_dir)["notes"]
    assert len([n for n in notes if n.startswith(note)]) == 1, notes
