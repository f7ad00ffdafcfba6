"""Counting instructions with valgrind's callgrind: a figure that the machine's load
does not change (bench/failpoint_bench.py --instructions).

A process runs under `valgrind --tool=callgrind`; `callgrind_control -z PID` zeroes its
counters and `callgrind_control -d PID` writes what it counted since into a numbered
file beside the output file (`OUT.1`, `OUT.2`, ...), so one phase of a long-lived
process (a store member under load, then idle) is counted alone. `callgrind_control`
reaches the process through vgdb, which wakes it when it sleeps in a system call.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

TOTALS = re.compile(rb"^(?:totals|summary): (\d+)", re.MULTILINE)


class CallgrindMissing(RuntimeError):
    pass


def require() -> None:
    missing = [p for p in ("valgrind", "callgrind_control") if shutil.which(p) is None]
    if missing:
        raise CallgrindMissing(f"{', '.join(missing)} not found: apt-get install -y valgrind")


def wrap(argv: list[str], out: Path) -> list[str]:
    """argv run under callgrind, counting instructions (Ir) only, into `out`."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]


def total(path: Path) -> int:
    """The instructions (Ir) a callgrind output or dump file counted."""
    found = TOTALS.findall(path.read_bytes())
    if not found:
        raise ValueError(f"{path}: no totals line (not a callgrind file, or cut short)")
    return int(found[-1])


def run(argv: list[str], out: Path, cwd: Path, env: dict[str, str]) -> int:
    """Run argv to its end under callgrind; the instructions it executed."""
    subprocess.run(wrap(argv, out), cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return total(out)


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True,
                   timeout=60)


def zero(pid: int) -> None:
    """Zero the counters of a running callgrind process."""
    _control("-z", pid)


def dump(pid: int, out: Path, number: int, timeout: float = 60.0) -> int:
    """Dump the counters of a running process (its `number`-th dump); what they counted."""
    _control("-d", pid)
    path = out.with_name(f"{out.name}.{number}")
    deadline = time.monotonic() + timeout
    while True:  # written before callgrind_control returns, but make sure it is complete
        if path.exists() and TOTALS.search(path.read_bytes()):
            return total(path)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"callgrind dump {path} not written after {timeout:.0f} s")
        time.sleep(0.05)
