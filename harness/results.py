"""Where a run's results go, and results.json.

results/<test>/<timestamp>/
    spec.yaml        the resolved spec (seed included): rerun it to repeat the test
    history.jsonl    every operation, appended as it happened
    results.json     verdicts, counterexamples, statistics, the nemesis timeline
    harness.log      what the harness did
    nodes/NAME.log   each node's output
    report.html      the report (harness/report/, docs/reports.md)
results/latest -> <test>/<timestamp>   the newest run
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.linearizable import Verdict, combine
from harness.spec import Spec, document, parse

SCHEMA_VERSION = 1
EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_ERROR = 0, 1, 2, 3


def make_run_dir(root: Path, test: str, now: float | None = None) -> Path:
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
    if verdict is False:
        return EXIT_INVALID
    if verdict == "unknown" or interrupted:
        return EXIT_UNKNOWN
    return EXIT_VALID


def describe(verdict: Verdict) -> str:
    return {True: "valid", False: "INVALID"}.get(verdict, "unknown")  # type: ignore[call-overload]


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
        if self.error is not None and not self.checkers:
            return "unknown"
        return combine([c["valid"] for c in self.checkers.values()])

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "test": self.test,
            "run_id": self.run_id,
            "valid": self.verdict,
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


def existing_files(run_dir: Path, files: dict[str, str]) -> dict[str, str]:
    """The entries of a results.json `files` whose file is in run_dir."""
    return {name: rel for name, rel in files.items() if (run_dir / rel).exists()}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A results.json, written whole or not at all."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


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
