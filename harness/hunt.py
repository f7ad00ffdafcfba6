"""`splitbrain hunt`: one spec run again and again with seeds 1, 2, ..., N (or until a
time budget is spent), each run a `splitbrain run` of its own in a child process, with
its own results folder (`RESULTS/seed-0001/...`); stops starting runs at the first
invalid one unless told to keep going. Writes `hunt.json` (docs/harness.md) and a JUnit
file with one test case per run.

Exit: 1 if any run was invalid, else 2 if any was unknown or interrupted (or the hunt
was), else 3 if a run could not be made (harness, spec or environment), else 0.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.junit import case, write
from checker.verdict import Verdict
from harness.verdicts import ERROR, RunError, RunVerdict, read_run

# The outcomes a hunt counts, in the order its summary names them.
KINDS: tuple[Verdict | type[RunError], ...] = (
    Verdict.VALID, Verdict.INVALID, Verdict.UNKNOWN, RunError)


def _word(kind: Verdict | type[RunError]) -> str:
    return ERROR if kind is RunError else str(kind)


@dataclass(frozen=True)
class HuntPlan:
    spec: str
    results: Path
    runs: int | None  # None: until the budget is spent
    budget_s: float | None
    parallel: int = 1
    keep_going: bool = False
    run_args: tuple[str, ...] = ()  # passed on to each `splitbrain run`
    first_seed: int = 1


@dataclass(frozen=True)
class HuntRun:
    seed: int
    exit_code: int
    seconds: float  # wall time of the child, cluster set-up and check included
    outcome: RunVerdict

    def line(self) -> str:
        v = self.outcome.violation
        text = f"seed {self.seed:>4}: {self.outcome.word:<7} {self.seconds:6.1f} s"
        if v is not None:
            text += f"  first violation at {v.at_s:.1f} s on key {v.key}"
            if v.fault is not None:
                text += f", {v.after_fault_s:.1f} s after {v.fault.f} {_short(v.fault.value)}"
        if self.outcome.error and self.outcome.verdict is not Verdict.VALID:
            text += f"  ({self.outcome.error})"
        if self.outcome.run_dir is not None:
            text += f"  {self.outcome.run_dir}"
        return text

    def to_json(self) -> dict[str, Any]:
        v = self.outcome.violation
        return {"seed": self.seed, "verdict": self.outcome.word, "exit_code": self.exit_code,
                "seconds": round(self.seconds, 3),
                "run_dir": None if self.outcome.run_dir is None else str(self.outcome.run_dir),
                "first_violation": None if v is None else v.to_json(),
                "error": self.outcome.error}


@dataclass
class HuntResult:
    plan: HuntPlan
    runs: list[HuntRun] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    def count(self, kind: Verdict | type[RunError]) -> int:
        """The runs with this verdict, or (RunError) the runs that gave none."""
        if kind is RunError:
            return sum(1 for r in self.runs if isinstance(r.outcome.verdict, RunError))
        return sum(1 for r in self.runs if r.outcome.verdict is kind)

    @property
    def exit_code(self) -> int:
        if self.count(Verdict.INVALID):
            return 1
        if self.count(Verdict.UNKNOWN) or self.interrupted:
            return 2
        return 3 if self.count(RunError) else 0

    def table(self) -> str:
        first = min((r for r in self.runs if r.outcome.violation is not None),
                    key=lambda r: r.seed, default=None)
        lines = [f"{len(self.runs)} runs in {self.seconds:.0f} s: "
                 + ", ".join(f"{self.count(k)} {_word(k)}" for k in KINDS if self.count(k))]
        if first is not None and first.outcome.violation is not None:
            lines.append(f"first invalid: seed {first.seed}, violation at "
                         f"{first.outcome.violation.at_s:.1f} s: "
                         f"{first.outcome.violation.explanation}")
        if self.interrupted:
            lines.append("interrupted: the runs above are all that finished")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.plan.spec, "runs_asked": self.plan.runs,
                "budget_s": self.plan.budget_s, "parallel": self.plan.parallel,
                "keep_going": self.plan.keep_going, "run_args": list(self.plan.run_args),
                "seconds": round(self.seconds, 3), "interrupted": self.interrupted,
                "counts": {_word(k): self.count(k) for k in KINDS},
                "exit_code": self.exit_code,
                "runs": [r.to_json() for r in sorted(self.runs, key=lambda r: r.seed)]}

    def junit(self) -> ET.Element:
        root = ET.Element("testsuites", name="splitbrain hunt")
        name = f"splitbrain.hunt.{Path(self.plan.spec).stem}"
        suite = ET.SubElement(root, "testsuite", name=name, time=f"{self.seconds:.3f}")
        for r in sorted(self.runs, key=lambda r: r.seed):
            name, where = f"seed {r.seed}", str(r.outcome.run_dir or "")
            v = r.outcome.violation
            if r.outcome.verdict is Verdict.INVALID:
                what = (f"invalid: {v.explanation}" if v else "invalid", f"{r.line()}\n{where}")
                case(suite, "hunt", name, r.seconds, failure=what)
            elif r.outcome.verdict is Verdict.UNKNOWN:
                case(suite, "hunt", name, r.seconds, skipped=f"unknown: {r.line()}")
            elif isinstance(r.outcome.verdict, RunError):
                case(suite, "hunt", name, r.seconds,
                     error=(str(r.outcome.error or "error"), r.line()))
            else:
                case(suite, "hunt", name, r.seconds)
        return root


def parse_budget(text: str) -> float:
    """Seconds from `90`, `90s`, `30m` or `2h`; ValueError naming the text otherwise."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"expected a duration such as 90s, 30m or 2h, got {text!r}") from None
    if not seconds > 0:
        raise ValueError(f"expected a duration > 0, got {text!r}")
    return seconds


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def run_command(plan: HuntPlan, seed: int) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", plan.spec, "--seed", str(seed),
            "--results", str(plan.results / f"seed-{seed:04d}"), "--quiet", *plan.run_args]


def one_run(plan: HuntPlan, seed: int, children: dict[int, subprocess.Popen[bytes]],
            lock: threading.Lock) -> HuntRun:
    out = plan.results / f"seed-{seed:04d}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(out / "run.log", "wb") as log:
        child = subprocess.Popen(run_command(plan, seed), stdout=log, stderr=subprocess.STDOUT)
        with lock:
            children[seed] = child
        code = child.wait()
        with lock:
            children.pop(seed, None)
    latest = out / "latest"
    run_dir = latest.resolve() if latest.exists() else None
    return HuntRun(seed, code, time.monotonic() - started, read_run(run_dir, code))


def hunt(plan: HuntPlan, say: Callable[[str], None] = print) -> HuntResult:
    """Run the plan; one line per finished run through `say`; Ctrl-C interrupts every
    child (each cleans up after itself, as `splitbrain run` does) and ends the hunt."""
    plan.results.mkdir(parents=True, exist_ok=True)
    result = HuntResult(plan)
    started = time.monotonic()
    children: dict[int, subprocess.Popen[bytes]] = {}
    lock = threading.Lock()
    seeds = _seeds(plan)
    pending: set[Future[HuntRun]] = set()

    def more() -> bool:
        if plan.budget_s is not None and time.monotonic() - started >= plan.budget_s:
            return False
        return plan.keep_going or not result.count(Verdict.INVALID)

    with ThreadPoolExecutor(max_workers=plan.parallel) as pool:
        try:
            for seed in seeds:
                while len(pending) >= plan.parallel:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    _collect(done, result, say)
                if not more():
                    break
                pending.add(pool.submit(one_run, plan, seed, children, lock))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                _collect(done, result, say)
        except KeyboardInterrupt:
            result.interrupted = True
            with lock:
                for child in children.values():
                    child.send_signal(signal.SIGINT)  #: the run heals, tears down and exits 2
            done, _ = wait(pending)
            _collect(done, result, say)
    result.seconds = time.monotonic() - started
    (plan.results / "hunt.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    write(result.junit(), plan.results / "junit.xml")
    return result


def _seeds(plan: HuntPlan) -> Iterable[int]:
    if plan.runs is not None:
        return range(plan.first_seed, plan.first_seed + plan.runs)
    return itertools.count(plan.first_seed)  # the budget ends it


def _collect(done: set[Future[HuntRun]], result: HuntResult, say: Callable[[str], None]) -> None:
    for future in done:
        run = future.result()
        result.runs.append(run)
        say(run.line())
