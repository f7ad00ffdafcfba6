"""Real runs for the report tests, made once per test session on the local backend
(no Docker): a valid run of our store under leader kills, an invalid one of
examples/laggy_kv (stale reads, with counterexamples), and a set workload run; and a
copy of the invalid one whose key and values are hostile HTML."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.progress import Progress
from harness.report import build_report
from harness.results import EXIT_INVALID, EXIT_VALID
from harness.runner import run
from harness.spec import parse

SEED = int(os.environ.get("SPLITBRAIN_SEED", "20261130"))
HOSTILE = "<script>alert(1)</script>"

SPECS: dict[str, dict[str, Any]] = {
    "kills": {
        "name": "kills", "system": "store", "backend": "local", "nodes": 3, "concurrency": 4,
        "time_limit": 7, "workload": {"name": "register", "ops_per_key": 100},
        "nemesis": {"faults": ["kill"], "kill": {"targets": ["leader"]},
                    "schedule": {"fault": 2, "heal": 1.5}},
    },
    "laggy": {
        "name": "laggy", "system": "examples.laggy_kv.system:LaggyKV", "backend": "local",
        "nodes": 3, "concurrency": 6, "time_limit": 5,
        "workload": {"name": "register", "ops_per_key": 60},
    },
    "set": {
        "name": "set", "system": "store", "backend": "local", "nodes": 3, "concurrency": 4,
        "time_limit": 4, "workload": {"name": "set", "ops_per_key": 300},
    },
}  # fmt: skip
EXPECTED = {"kills": EXIT_VALID, "laggy": EXIT_INVALID, "set": EXIT_VALID}


@dataclass
class Runs:
    root: Path
    dirs: dict[str, Path]

    def results(self, name: str) -> dict[str, Any]:
        return json.loads((self.dirs[name] / "results.json").read_text())


_made: Runs | None = None


def real_runs(root: Path) -> Runs:
    """The runs above under root (made at the first call of the session)."""
    global _made
    if _made is not None:
        return _made
    dirs = {}
    for name, data in SPECS.items():
        outcome = run(parse({**data, "seed": SEED, "results": str(root)}), Progress(quiet=True))
        assert outcome.exit_code == EXPECTED[name], (
            f"seed {SEED}: {name} exited {outcome.exit_code}: "
            f"{json.dumps(outcome.results.to_json())[:2000]}")
        dirs[name] = outcome.directory
    dirs["hostile"] = hostile_copy(dirs["laggy"], root / "hostile" / "20990101T000000")
    _made = Runs(root, dirs)
    return _made


def hostile_copy(source: Path, target: Path) -> Path:
    """The run at source, with its first invalid key renamed to HOSTILE, the values of
    that key's reads replaced by HOSTILE, and the system's version HOSTILE: what a
    system under test could send back."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("data"))
    results = json.loads((target / "results.json").read_text())
    key = results["checkers"]["linearizable"]["invalid_keys"][0]

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        if value == key:
            return HOSTILE
        if isinstance(value, str):
            return value.replace(repr(key), repr(HOSTILE))
        return value

    results = swap(results)
    results["test"] = "hostile"
    results["system"]["version"] = HOSTILE
    (target / "results.json").write_text(json.dumps(results, indent=1))
    lines = []
    for line in (target / "history.jsonl").read_text().splitlines():
        op = json.loads(line)
        if op.get("key") == key:
            op["key"] = HOSTILE
            if op["f"] == "read" and op["type"] == "ok":
                op["value"] = HOSTILE
        lines.append(json.dumps(op))
    (target / "history.jsonl").write_text("\n".join(lines) + "\n")
    build_report(target)
    return target
