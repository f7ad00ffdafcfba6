"""Where a run's results go, and results.json.

results/<test>/<timestamp>/
    spec.yaml        the resolved spec (seed included): rerun it to repeat the test
    history.jsonl    every operation, appended as it happened
    results.json     verdicts, counterexamples, statistics, the nemesis timeline
    harness.log      what the harness did
    nodes/NAME.log   each node's output
    nodes/NAME/data/ each node's data directory (spec `collect_data`: by default only
                     when the run was not found valid)
    report.html      the report (harness/report/, docs/reports.md)
results/latest -> <test>/<timestamp>   the newest run
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.verdict import Verdict
from harness.spec import Spec, document, parse

SCHEMA_VERSION = 1
EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3


class ResultsError(RuntimeError):
    """The results folder cannot be made or written: said in one line, nothing started."""


def make_run_dir(root: Path, test: str, now: float | None = None) -> Path:
    if root.exists() and not root.is_dir():
        raise ResultsError(f"results folder {root}: not a folder")
    try:
        return _make_run_dir(root, test, now)
    except OSError as e:
        where = "" if e.filename in (None, str(root)) else f" ({e.filename})"
        reason = f"{e.strerror or e}{where}"
        raise ResultsError(f"results folder {root}: cannot be made: {reason}") from None


def _make_run_dir(root: Path, test: str, now: float | None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
    base = root / test
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    path.mkdir(parents=True)
    (path / "nodes").mkdir()
    link = root / "latest"
    tmp = root / f".latest-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(path.relative_to(root))
    tmp.replace(link)
    return path


def write_spec(path: Path, spec: Spec) -> None:
    """spec.yaml: `splitbrain run` reads it back as the same spec."""
    path.write_text(yaml.safe_dump(document(spec.to_json()), sort_keys=False))


def load_run_spec(run_dir: Path) -> Spec:
    """The spec a run used: its spec.yaml, or (for runs whose spec.yaml was written in
    the resolved form) results.json's `spec`."""
    from harness.spec import SpecError, load

    try:
        return load(run_dir / "spec.yaml")
    except SpecError:
        resolved = json.loads((run_dir / "results.json").read_text()).get("spec")
        if not resolved:
            raise
        return parse(document(resolved), str(run_dir / "results.json"))


def exit_code(verdict: Verdict, interrupted: bool) -> int:
    """1 only when a checker found the history invalid; 2 unknown or interrupted."""
    if verdict is Verdict.INVALID:
        return EXIT_INVALID
    if verdict is Verdict.UNKNOWN or interrupted:
        return EXIT_UNKNOWN
    return EXIT_VALID


def run_exit_code(results: RunResults) -> int:
    """A run's exit code (docs/harness.md, "Exit codes"): an invalid history is a finding
    even from a run that failed; otherwise an error of the harness, the spec or the
    environment (3) outranks an interruption (2)."""
    if results.verdict is Verdict.INVALID:
        return EXIT_INVALID
    if results.error is not None:
        return EXIT_ERROR
    return exit_code(results.verdict, results.interrupted)


@dataclass
class RunResults:
    test: str
    run_id: str
    spec: Spec
    started: float
    ended: float | None = None
    interrupted: bool = False
    error: str | None = None
    system: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] | None = None
    checkers: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        from harness.checkers import combined

        return combined(self.checkers)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "test": self.test,
            "run_id": self.run_id,
            "valid": self.verdict.to_json(),
            "interrupted": self.interrupted,
            "error": self.error,
            "started": _iso(self.started),
            "ended": _iso(self.ended) if self.ended else None,
            "duration_s": round(self.ended - self.started, 3) if self.ended else None,
            "system": self.system,
            "cluster": self.cluster,
            "image": self.image,
            "spec": self.spec.to_json(),
            "checkers": self.checkers,
            "stats": self.stats,
            "notes": self.notes,
            "files": self.files,
        }

    def write(self, path: Path) -> None:
        """results.json at path; `files` lists only those that exist beside it (the
        report adds itself once it is written)."""
        data = self.to_json()
        data["files"] = {name: rel for name, rel in self.files.items()
                         if rel == path.name or (path.parent / rel).exists()}
        write_json(path, data)


def drop_torn_last_line(history: Path) -> int:
    """A write the disk refused, or a crash, may leave part of a line at the end of a
    history: that operation was never recorded, and the lines before it stay readable
    once it is gone. The bytes dropped (0: the history ends with a whole line)."""
    try:
        with open(history, "rb+") as stream:
            size = stream.seek(0, 2)
            tail = max(0, size - (1 << 16))
            stream.seek(tail)
            end = stream.read().rfind(b"\n")
            if end < 0 and tail > 0:
                return 0  # no line end in the last 64 KiB: not a torn line; left to the reader
            keep = tail + end + 1
            if keep < size:
                stream.truncate(keep)
            return size - keep
    except OSError:
        return 0


def unfinished_results(run_dir: Path) -> RunResults:
    """results.json for a run that ended without writing one (its harness was killed
    outright): what its folder says about it, marked interrupted, with no verdict yet."""
    spec = load_run_spec(run_dir)
    run_id, started = "", (run_dir / "spec.yaml").stat().st_mtime
    log_path = run_dir / "harness.log"
    if log_path.is_file():
        with open(log_path, encoding="utf-8", errors="replace") as stream:
            found = re.search(r"\brun (\S+) of ", stream.readline())
        run_id = found.group(1) if found else ""
    results = RunResults(spec.name, run_id, spec, started, interrupted=True)
    results.ended = (run_dir / "history.jsonl").stat().st_mtime  # its last line
    results.notes.append(
        "unfinished run: the harness ended without writing results.json (killed?); "
        "this is the check of the history it left"
    )
    dropped = drop_torn_last_line(run_dir / "history.jsonl")
    if dropped:
        results.notes.append(f"the history ended in part of a line ({dropped} bytes): dropped")
    names = {
        "spec": "spec.yaml", "history": "history.jsonl", "results": "results.json",
        "harness_log": "harness.log", "node_logs": "nodes/",
    }  # fmt: skip
    results.files = {
        k: v for k, v in names.items() if k == "results" or (run_dir / v).exists()
    }
    return results



def existing_files(run_dir: Path, files: dict[str, str]) -> dict[str, str]:
    """The entries of a results.json `files` whose file is in run_dir."""
    return {name: rel for name, rel in files.items() if (run_dir / rel).exists()}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A results.json, written whole or not at all."""
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def record_file(run_dir: Path, name: str, rel: str) -> None:
    """Add a file, now written, to run_dir/results.json's `files`."""
    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    files = data.get("files") or {}
    if files.get(name) == rel:
        return
    data["files"] = {**files, name: rel}
    write_json(path, data)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
