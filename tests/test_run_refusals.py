"""`splitbrain run` refuses a spec that cannot run before it makes anything: one line on
stderr naming the file and the field, exit 3, no traceback, no results folder, and
`latest` where it was."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

SPLITBRAIN = Path(sys.executable).parent / "splitbrain"
SEED = 19
LIST = "  schedule:\n    kind: list\n    steps:\n"

SPECS = {
    "random-bytes": (None, "not UTF-8 text"),
    "empty": ("", "empty spec"),
    "subnet-pool": ("name: x\nnodes: 3\nsubnet_pool: 10.0.0.0/30\n",
                    "field 'subnet_pool': 10.0.0.0/30 leaves room for 1 node(s)"),
    "system": ("name: x\nsystem: nonexistent.module:Class\n",
               "field 'system': system 'nonexistent.module:Class': cannot import"),
    "client": ("name: x\nclient: nonexistent.module:Class\n",
               "field 'client': client 'nonexistent.module:Class': cannot import"),
    "system-options": ("name: x\nsystem_options: {heartbeat: 5}\n",
                       "field 'system': system 'store': bad options"),
    "steps-out-of-order": (
        "name: x\nnemesis:\n  faults: [kill]\n" + LIST
        + "      - {at: 10, f: kill, value: leader}\n      - {at: 5, f: restart}\n",
        "field 'nemesis'.schedule.steps[1].at: 5 s comes before the step above it (10 s)"),
    "network-fault-on-local": (
        "name: x\nbackend: local\nnemesis: {faults: [kill, partition]}\n",
        "field 'nemesis': the local backend cannot do what kill, partition need: Network"),
    "slow-on-local": (
        "name: x\nbackend: local\nnemesis: {faults: [pause, slow]}\n",
        "field 'nemesis': the local backend cannot do what pause, slow need: Throttle"),
    "slow-cpus": ("name: x\nnemesis:\n  faults: [slow]\n  slow: {cpus: 4}\n",
                  "nemesis.slow.cpus: expected a share of one CPU, 0.01 to 1, got 4"),
    "kill-signal": ("name: x\nnemesis:\n  faults: [kill]\n  kill: {signal: SIGFOO}\n",
                    "nemesis.kill.signal: expected one of SIGKILL, SIGTERM, SIGINT"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SPECS))
def test_a_spec_that_cannot_run_is_refused_before_anything_is_made(
    tmp_path: Path, case: str
) -> None:
    text, words = SPECS[case]
    spec = tmp_path / f"{case}.yaml"
    if text is None:
        spec.write_bytes(random.Random(SEED).randbytes(4096))
    else:
        spec.write_text(text)
    results = tmp_path / "results"
    earlier = results / "x" / "20260101T000000"
    earlier.mkdir(parents=True)
    (results / "latest").symlink_to(earlier.relative_to(results))
    before = sorted(p.relative_to(results) for p in results.rglob("*"))

    done = subprocess.run(
        [str(SPLITBRAIN), "run", str(spec), "--results", str(results), "--time-limit", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 3, f"seed {SEED}: {done}"
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"splitbrain run: {spec}: "), lines[0]
    assert words in lines[0], lines[0]
    assert done.stdout == ""  # nothing started, nothing said
    assert sorted(p.relative_to(results) for p in results.rglob("*")) == before
    assert (results / "latest").resolve() == earlier.resolve()

