"""How a run ends, whatever happens to it (docs/harness.md, "Exit codes"): an honest exit
code, results.json saying what happened, nothing of the run left in Docker, and what was
recorded kept.

Exit 1 only ever means a checker found the history invalid; 3 an error of the harness,
the spec or the environment; 2 an interruption or a checker out of budget. The signal
tests drive a real `splitbrain run` subprocess and wait (with a deadline) for the phase
they interrupt: a line it prints, or a line of its history or harness.log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.results import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_UNKNOWN,
    EXIT_VALID,
    RunResults,
    run_exit_code,
)
from harness.spec import parse
from tests.test_harness import docker_client

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261205"))
SPLITBRAIN = [sys.executable, "-m", "harness.cli"]


@dataclass
class Cli:
    """A `splitbrain` subprocess whose output is read as it comes."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, *argv: str, env: dict[str, str] | None = None) -> Cli:
        process = subprocess.Popen(
            [*SPLITBRAIN, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env, start_new_session=True,
        )  # fmt: skip
        cli = cls(process)
        cli.reader = threading.Thread(target=cli._read, daemon=True)
        cli.reader.start()
        return cli

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                self.finish(5)
                raise AssertionError(f"the run ended before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout} s:\n{self.output}")
            time.sleep(0.02)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def finish(self, timeout: float = 180) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        assert self.reader is not None
        self.reader.join(5)
        return code


@pytest.fixture
def cli() -> Iterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for c in started:
        if c.process.poll() is None:
            c.process.kill()
            c.process.wait()


def write_spec(tmp_path: Path, **fields: Any) -> Path:
    spec = {
        "name": "lifecycle", "system": "store", "backend": "local", "nodes": 3,
        "concurrency": 10, "time_limit": 8, "seed": SEED,
        "workload": {"name": "register", "ops_per_key": 60},
    }  # fmt: skip
    spec.update(fields)
    parse(spec)  # a spec the harness takes
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def results_of(run_dir: Path) -> dict[str, Any]:
    """results.json, checked against its schema (docs/results.schema.json)."""
    import jsonschema

    results = json.loads((run_dir / "results.json").read_text())
    schema = json.loads((ROOT / "docs" / "results.schema.json").read_text())
    jsonschema.validate(results, schema)
    return results


def history_lines(run_dir: Path) -> list[str]:
    path = run_dir / "history.jsonl"
    return path.read_text().splitlines() if path.exists() else []


# -- the rule


def results_with(*verdicts: Any, error: str | None = None, interrupted: bool = False) -> RunResults:
    spec = parse({"name": "rule"})
    results = RunResults("rule", "r", spec, 0.0, error=error, interrupted=interrupted)
    for i, valid in enumerate(verdicts):
        results.checkers[f"c{i}"] = {"valid": valid}
    return results


@pytest.mark.parametrize(
    ("verdicts", "error", "interrupted", "code"),
    [
        ((True, True), None, False, EXIT_VALID),
        ((True, False), None, False, EXIT_INVALID),
        ((True, False), "the disk is full", True, EXIT_INVALID),  # a finding stays one
        ((True, "unknown"), None, False, EXIT_UNKNOWN),  # a checker out of budget
        ((True, True), None, True, EXIT_UNKNOWN),  # interrupted, checked
        ((), None, True, EXIT_UNKNOWN),  # interrupted before anything ran
        ((True, True), "the disk is full", False, EXIT_ERROR),
        ((), "no Docker", False, EXIT_ERROR),
        ((), "no Docker", True, EXIT_ERROR),
        ((), None, False, EXIT_UNKNOWN),  # never valid without a check
    ],
)
def test_exit_1_means_invalid_and_nothing_else(
    verdicts: tuple[Any, ...], error: str | None, interrupted: bool, code: int
) -> None:
    results = results_with(*verdicts, error=error, interrupted=interrupted)
    assert run_exit_code(results) == code
    if not verdicts:
        assert results.verdict == "unknown" and results.to_json()["valid"] == "unknown"


def test_the_rule_is_in_the_docs() -> None:
    text = (ROOT / "docs" / "harness.md").read_text()
    assert "exit 1 only ever means a checker found the history invalid" in text.lower()


@pytest.mark.parametrize(
    "command", [["cluster", "status"], ["cluster", "down"], ["cluster", "down", "x"]]
)
def test_no_docker_is_an_error_of_the_environment_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    done = subprocess.run([*SPLITBRAIN, *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == EXIT_ERROR, done
    assert done.stderr.count("\n") == 1 and "Docker" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# -- the results folder


@pytest.mark.parametrize("where", ["/proc/nope", "a-file", "a-file/below"])
def test_a_results_folder_that_cannot_be_made_is_one_line_and_starts_nothing(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    results = where if where.startswith("/") else str(tmp_path / where)
    spec = write_spec(tmp_path)
    done = subprocess.run([*SPLITBRAIN, "run", str(spec), "--results", results], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == EXIT_ERROR, done
    assert done.stderr.count("\n") == 1 and results in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "starting" not in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "spec.yaml"]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (b'{"a":1}\n{"b":2}\n', b'{"a":1}\n{"b":2}\n'),
        (b'{"a":1}\n{"b":', b'{"a":1}\n'),
        (b'{"b":', b""),
        (b"", b""),
    ],
)
def test_a_torn_last_line_is_dropped_and_the_rest_kept(
    tmp_path: Path, text: bytes, kept: bytes
) -> None:
    from harness.results import drop_torn_last_line

    path = tmp_path / "history.jsonl"
    path.write_bytes(text)
    assert drop_torn_last_line(path) == len(text) - len(kept)
    assert path.read_bytes() == kept


# -- signals on the local backend


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_check_lets_it_finish(
    tmp_path: Path, cli: list[Cli], sig: signal.Signals
) -> None:
    spec = write_spec(tmp_path, time_limit=12)  # a history whose check takes a while
    run = Cli.start("run", str(spec), "--results", str(tmp_path / "r"))
    cli.append(run)
    run.wait_for(lambda: run.said("checking "), "the check")
    run.process.send_signal(sig)
    code = run.finish()
    run_dir = (tmp_path / "r" / "latest").resolve()
    log = (run_dir / "harness.log").read_text()
    assert f"{sig.name} during check" in log, f"the signal did not land in the check:\n{log}"
    results = results_of(run_dir)
    assert code == EXIT_UNKNOWN, f"seed {SEED}:\n{run.output}"
    assert results["interrupted"] is True and results["error"] is None
    assert results["checkers"]["linearizable"]["valid"] is True, results["checkers"]
    assert results["checkers"]["linearizable"]["key_count"] > 0
    assert "valid (interrupted)" in run.output and "Traceback" not in run.output
    assert (run_dir / "report.html").is_file()


def test_a_second_signal_during_the_check_stops_it_without_a_verdict(
    tmp_path: Path, cli: list[Cli]
) -> None:
    spec = write_spec(tmp_path, time_limit=12)  # a history whose check takes a while
    run = Cli.start("run", str(spec), "--results", str(tmp_path / "r"))
    cli.append(run)
    run.wait_for(lambda: run.said("checking "), "the check")
    run.process.send_signal(signal.SIGINT)  # two kinds: pending signals of one kind merge
    run.process.send_signal(signal.SIGTERM)
    code = run.finish()
    run_dir = (tmp_path / "r" / "latest").resolve()
    log = (run_dir / "harness.log").read_text()
    assert "SIGTERM during check" in log, f"the signals did not land in the check:\n{log}"
    results = results_of(run_dir)
    assert code == EXIT_UNKNOWN, run.output
    assert results["valid"] == "unknown" and results["checkers"] == {}, results["checkers"]
    assert results["interrupted"] is True and results["error"] is None
    assert any("stopped by a second signal" in n for n in results["notes"]), results["notes"]
    assert "valid (" not in run.output and "Traceback" not in run.output, run.output


def test_a_signal_during_cluster_start_is_never_valid(tmp_path: Path, cli: list[Cli]) -> None:
    run = Cli.start("run", str(write_spec(tmp_path)), "--results", str(tmp_path / "r"))
    cli.append(run)
    run.wait_for(lambda: run.said("starting 3 store nodes"), "the cluster start")
    run.process.send_signal(signal.SIGINT)
    code = run.finish()
    results = results_of((tmp_path / "r" / "latest").resolve())
    assert code == EXIT_UNKNOWN, run.output
    assert results["valid"] == "unknown" and results["interrupted"] is True, results
    assert results["checkers"] == {} and results["error"] is None
    assert "unknown (interrupted)" in run.output and "valid (" not in run.output


def test_report_checks_the_history_a_killed_run_left(tmp_path: Path, cli: list[Cli]) -> None:
    run = Cli.start("run", str(write_spec(tmp_path, time_limit=60)),
                    "--results", str(tmp_path / "r"))  # fmt: skip
    cli.append(run)
    run_dir = tmp_path / "r" / "latest"
    run.wait_for(lambda: len(history_lines(run_dir)) > 2000, "2000 lines of history")
    run.process.kill()  # SIGKILL: no clean-up, no results.json
    run.finish()
    run_dir = run_dir.resolve()
    assert not (run_dir / "results.json").exists()
    with open(run_dir / "history.jsonl", "a") as history:  # as a crash mid-write leaves it
        history.write('{"index":999999999,"process":0,"type":"invoke","f":"wri')
    ops = len(history_lines(run_dir)) - 1
    done = subprocess.run([*SPLITBRAIN, "report", str(run_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    output = done.stdout + done.stderr
    results = results_of(run_dir)
    # the store is linearizable: the history checks valid, and the run was not finished
    assert done.returncode == EXIT_UNKNOWN, output
    assert results["checkers"]["linearizable"]["valid"] is True, output
    assert results["interrupted"] is True and results["valid"] is True
    assert any("unfinished run" in note for note in results["notes"]), results["notes"]
    assert any("part of a line" in note for note in results["notes"]), results["notes"]
    assert results["run_id"] and results["spec"]["seed"] == SEED
    assert sum(results["stats"]["ops"][f].get("ok", 0) for f in results["stats"]["ops"]) > 0
    assert len(history_lines(run_dir)) == ops  # only the torn line went
    assert (run_dir / "report.html").is_file() and "unfinished run" in (
        run_dir / "report.html"
    ).read_text()
    for name in results["files"].values():
        assert (run_dir / name).exists(), name


# -- Docker: clean-up at every phase, a full disk, leftovers, images


@pytest.fixture(scope="module")
def docker() -> Any:
    return docker_client()


def left_by(client: Any, run_id: str | None = None, pid: int | None = None) -> list[str]:
    """Containers, networks and volumes of one run (by its id, or by the pid that made it)."""
    from harness.labels import OWNER, RUN

    flt = {"label": f"{RUN}={run_id}" if run_id else "splitbrain"}

    def chosen(labels: dict[str, str] | None) -> bool:
        return pid is None or (labels or {}).get(OWNER, "").startswith(f"{pid}:")

    return (
        [c.name for c in client.containers.list(all=True, filters=flt) if chosen(c.labels)]
        + [n.name for n in client.networks.list(filters=flt) if chosen(n.attrs.get("Labels"))]
        + [v.name for v in client.volumes.list(filters=flt) if chosen(v.attrs.get("Labels"))]
    )


DOCKER_SPEC = {
    "backend": "docker", "concurrency": 4, "time_limit": 6,
    "workload": {"name": "register", "ops_per_key": 10},  # many keys: final reads take a while
    "nemesis": {"faults": ["partition"],  # in force from 1 s until the final heal
                "schedule": {"kind": "list", "steps": [{"at": 1, "f": "partition",
                                                        "value": "halves"}]}},
}  # fmt: skip


def partition_in_force(run_dir: Path) -> bool:
    return any('"f":"partition","value":{' in line for line in history_lines(run_dir))


def healing(run_dir: Path) -> bool:
    return any('"f":"heal-partition"' in line for line in history_lines(run_dir))


def final_reads(run_dir: Path) -> bool:
    """A read invoked after the final heal completed: the final phase."""
    lines = history_lines(run_dir)
    healed = [i for i, line in enumerate(lines) if '"f":"heal-partition","value"' in line]
    return bool(healed) and any(
        '"type":"invoke","f":"read"' in line for line in lines[healed[0] + 1 :]
    )


def harness_log_says(run_dir: Path, text: str) -> bool:
    path = run_dir / "harness.log"
    return path.exists() and text in path.read_text()


PHASES: dict[str, Callable[[Cli, Path], bool]] = {
    "cluster start": lambda run, _: run.said("starting 3 store nodes"),
    "partition in force": lambda _, d: partition_in_force(d),
    "heal": lambda _, d: healing(d),
    "final reads": lambda _, d: final_reads(d),
    "check": lambda run, _: run.said("checking "),
    "report": lambda _, d: harness_log_says(d, "building the report"),
}


def test_a_signal_while_the_event_loop_starts_or_ends_is_noted_not_raised() -> None:
    """Around _drive, uvloop.run starts and shuts down with the runner's own handler in
    charge: a signal then must not raise into the loop's shutdown (it skipped the check
    once, in the final-reads case below); it is noted, and a starting drive stops."""
    import io

    from harness.progress import Progress
    from harness.runner import Interrupts, Phase

    results = results_with()
    stream = io.StringIO()
    with Interrupts(results, Progress(stream=stream)) as interrupts:
        interrupts.phase = Phase.DRIVE
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs before kill returns here
        deadline = time.monotonic() + 5
        while not results.interrupted and time.monotonic() < deadline:
            time.sleep(0.01)
    assert results.interrupted and "stopping" in stream.getvalue(), stream.getvalue()


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_signal_at_each_phase_ends_honestly_and_leaves_nothing(
    docker: Any, tmp_path: Path, cli: list[Cli], phase: str
) -> None:
    run = Cli.start("run", str(write_spec(tmp_path, **DOCKER_SPEC)),
                    "--results", str(tmp_path / "r"))  # fmt: skip
    cli.append(run)
    run_dir = tmp_path / "r" / "latest"
    run.wait_for(lambda: PHASES[phase](run, run_dir), phase)
    if phase == "partition in force":  # each node has its helper, which must go too
        made = left_by(docker, pid=run.process.pid)
        assert len([name for name in made if name.endswith("-net")]) == 3, made
    run.process.send_signal(signal.SIGINT)
    code = run.finish()
    run_dir = run_dir.resolve()
    results = results_of(run_dir)
    summary = f"seed {SEED}, phase {phase}:\n{run.output}"
    assert code == EXIT_UNKNOWN, summary
    assert results["interrupted"] is True and results["error"] is None, summary
    assert "Traceback" not in run.output, summary
    if phase == "cluster start":
        assert results["valid"] == "unknown" and results["checkers"] == {}, summary
    else:  # what was recorded was checked
        assert results["checkers"]["linearizable"]["valid"] is True, summary
        ops = [json.loads(line) for line in history_lines(run_dir)]
        partitions = [op for op in ops if op["f"] == "partition"]
        heals = [op for op in ops if op["f"] in ("heal", "heal-partition")]
        assert len(heals) >= len(partitions), f"a partition was not healed: {summary}"
    if phase == "report":
        assert "report" not in results["files"] and not (run_dir / "report.html").exists()
        assert any("report" in note for note in results["notes"]), results["notes"]
    else:
        assert (run_dir / "report.html").is_file(), summary
    assert left_by(docker, results["run_id"]) == [], summary


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_a_full_results_disk_is_an_error_and_the_cluster_still_goes(
    docker: Any, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    mount_tmpfs(small, "200k")
    try:
        spec = write_spec(tmp_path, **{**DOCKER_SPEC, "time_limit": 30})
        process = subprocess.Popen([*SPLITBRAIN, "run", str(spec), "--results", str(small)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)  # fmt: skip
        output, _ = process.communicate(timeout=300)
        run_dir = (small / "latest").resolve()
        assert process.returncode == EXIT_ERROR, output
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "No space left on device" in errors[0], output
        assert "Traceback" not in output and "Logging error" not in output, output
        lines = history_lines(run_dir)
        assert len(lines) > 100, output  # what was recorded until the disk filled is kept
        for line in lines:  # and every line of it reads (a torn last write is dropped)
            json.loads(line)
        assert left_by(docker, pid=process.pid) == [], output
    finally:
        subprocess.run(["umount", str(small)], check=True)


def node_image(client: Any) -> str:
    from harness.image import ImageError, ensure_image

    try:
        return ensure_image(client=client).tag
    except ImageError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to build the node image: {e}")
        pytest.skip(f"the node image cannot be built here: {e}")


def test_cluster_down_removes_what_status_lists_as_a_leftover(docker: Any) -> None:
    from harness.labels import labels, owner_here

    run_id = f"leftover-{os.getpid()}"
    dead = labels(run_id, "999999999:1")  # a process that is gone
    image = node_image(docker)
    made = [
        docker.networks.create(f"splitbrain-{run_id}", internal=True, labels=dead),
        docker.volumes.create(f"splitbrain-{run_id}", labels=dead),
        docker.containers.create(image, ["true"], name=f"splitbrain-{run_id}-n1", labels=dead),
    ]
    live_id = f"going-{os.getpid()}"
    live = docker.volumes.create(f"splitbrain-{live_id}", labels=labels(live_id, owner_here()))
    try:
        status = subprocess.run([*SPLITBRAIN, "cluster", "status"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        listed = [json.loads(line) for line in status.stdout.splitlines() if line.startswith("{")]
        mine = [c for c in listed if c["run"] == run_id]
        assert mine and mine[0]["nodes"][0]["owner"] == "gone (leftover)", status.stdout
        down = subprocess.run([*SPLITBRAIN, "cluster", "down", run_id], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert down.returncode == 0 and f"removed {run_id}" in down.stdout, down
        assert left_by(docker, run_id) == []
        # a run still going (this process owns it) is not someone's leftover
        refused = subprocess.run([*SPLITBRAIN, "cluster", "down", live_id], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        assert refused.returncode == EXIT_ERROR and "still going" in refused.stderr, refused
        assert left_by(docker, live_id) != []
    finally:
        for thing in [*made, live]:
            with contextlib.suppress(Exception):  # gone already when the test passed
                thing.remove(**({} if thing in made[:1] else {"force": True}))


def test_an_image_build_prunes_only_this_checkouts_unused_images(docker: Any) -> None:
    import io

    from harness.image import (
        NODE_REPOSITORY,
        PYTHON_PACKAGES,
        checkout,
        debian_tag,
        prune_node_images,
    )
    from harness.labels import CHECKOUT

    keep = node_image(docker)
    suffix = f"{os.getpid()}"

    base = debian_tag(PYTHON_PACKAGES, "minbase")  # labels are inherited: not keep

    def build(name: str, label: str | None) -> str:
        lines = f"FROM {base}\n" + (f'LABEL {CHECKOUT}="{label}"\n' if label else "")
        lines += f'LABEL test="{name}"\n'  # a layer of its own, so a distinct image
        tag = f"{NODE_REPOSITORY}:test-{name}-{suffix}"
        docker.images.build(fileobj=io.BytesIO(lines.encode()), tag=tag, rm=True)
        return tag

    older = build("older", checkout())
    in_use = build("in-use", checkout())
    other = build("other", "/somewhere/else")
    unlabelled = build("unlabelled", None)
    user = docker.containers.create(in_use, ["true"], labels={"test": "prune"})
    said: list[str] = []
    try:
        prune_node_images(docker, keep=keep, progress=said.append)
        tags = {t for image in docker.images.list(name=NODE_REPOSITORY) for t in image.tags}
        assert older not in tags, said
        assert {keep, in_use, other, unlabelled} <= tags, (tags, said)
        assert any(older in line for line in said), said
    finally:
        user.remove(force=True)
        for tag in (older, in_use, other, unlabelled):
            with contextlib.suppress(Exception):
                docker.images.remove(tag)


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (a zombie is dead, waiting to be reaped)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = (text := stat.read_text())[text.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def children_of(pid: int) -> list[tuple[int, str]]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                found.append((int(stat.parent.name), text[text.index("(") + 1 : text.rindex(")")]))
    return found


def test_ctrl_c_during_an_image_build_stops_its_children_and_removes_its_files(
    docker: Any, tmp_path: Path, cli: list[Cli]
) -> None:
    import shutil

    if shutil.which("mmdebstrap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have mmdebstrap (make install)")
        pytest.skip("mmdebstrap is not installed")
    cache = tmp_path / "cache"
    before = set(Path("/tmp").glob("mmdebstrap.*"))
    build = Cli.start("image", "build", "--force", env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    cli.append(build)
    build.wait_for(lambda: build.said("mmdebstrap bookworm"), "mmdebstrap", timeout=120)
    mmdebstrap: list[int] = []

    def started() -> bool:  # mmdebstrap running, its chroot begun under our cache
        mmdebstrap[:] = [p for p, name in children_of(build.process.pid) if name == "mmdebstrap"]
        return bool(mmdebstrap) and any(
            p.is_dir() for p in (cache / "splitbrain").glob("splitbrain-rootfs-*/mmdebstrap.*")
        )

    build.wait_for(started, "mmdebstrap's chroot", timeout=120)
    build.process.send_signal(signal.SIGINT)
    code = build.finish(timeout=120)
    assert code == EXIT_UNKNOWN, build.output
    assert "interrupted" in build.output and "Traceback" not in build.output, build.output
    deadline = time.monotonic() + 5  # killed: gone as soon as the kernel has them
    while group_members(mmdebstrap[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(mmdebstrap[0]) == [], "mmdebstrap's processes were left running"
    assert list((cache / "splitbrain").iterdir()) == [], "the build's files were left"
    assert set(Path("/tmp").glob("mmdebstrap.*")) <= before


# -- the nodes' data directories (spec collect_data), on the local backend


@pytest.mark.parametrize(
    ("collect", "checker", "kept"),
    [
        ("always", {}, True),  # a valid run: kept as asked
        ("invalid", {}, False),  # a valid run: dropped after the check
        ("invalid", {"time_limit": 0.001}, True),  # the checker out of budget: unknown, kept
        ("never", {"time_limit": 0.001}, False),
    ],
)
def test_data_directories_are_collected_as_the_spec_says(
    tmp_path: Path, collect: str, checker: dict[str, float], kept: bool
) -> None:
    from harness.progress import Progress
    from harness.runner import run

    spec = parse({
        "name": "data", "system": "store", "backend": "local", "nodes": 3, "concurrency": 4,
        "time_limit": 2, "seed": SEED, "results": str(tmp_path), "collect_data": collect,
        "workload": {"name": "register", "ops_per_key": 60}, "checker": checker,
    })  # fmt: skip
    outcome = run(spec, Progress(quiet=True))
    results = results_of(outcome.directory)
    summary = f"seed {SEED}: {json.dumps(results)[:2000]}"
    expected = EXIT_UNKNOWN if checker else EXIT_VALID
    assert outcome.exit_code == expected, summary
    nodes = outcome.directory / "nodes"
    assert sorted(p.name for p in nodes.glob("*.log")) == ["n1.log", "n2.log", "n3.log"]
    data = sorted(p.relative_to(nodes).as_posix() for p in nodes.glob("*/data"))
    if kept:
        assert data == ["n1/data", "n2/data", "n3/data"], summary
        for name in ("n1", "n2", "n3"):  # the store's own files: its member id and WAL
            assert (nodes / name / "data" / "member").is_dir(), list((nodes / name).rglob("*"))
    else:
        assert data == [] and sorted(p.name for p in nodes.iterdir()) == [
            "n1.log", "n2.log", "n3.log"], summary
    assert not any("data directory" in note for note in results["notes"]), summary
    # the members ran in a temporary folder of their own, gone with the cluster
    assert not Path(results["cluster"]["root"]).exists()
    assert not (outcome.directory / "data").exists()
