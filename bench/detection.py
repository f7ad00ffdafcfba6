"""The detection matrix: how often a spec finds each planted bug (store/failpoints.py).

For every failpoint a black-box run can expose (or those named), runs the spec with
that failpoint on in every member, seeds 1..N (each a `splitbrain run`, through
harness/hunt.py, every seed run even after a find), and the unmodified store as the
control, seeds 1..C. Prints per bug: found k/n, the median time from the workload's
start to the first violation and from the fault that exposed it; per control: valid
k/n, and the counterexample of any invalid control run (a false alarm). Writes
OUT/detection.json; each bug's runs are in
OUT/<spec>/<failpoint>/ (hunt.json, junit.xml, the runs).

    .venv/bin/python bench/detection.py --seeds 10 --controls 20 --out /tmp/detection
    .venv/bin/python bench/detection.py --spec specs/hunt.yaml --failpoints vote-no-log-check

Long (a 60 s run takes about 75 s with set-up and check): not part of `make bench`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checker.verdict import Verdict  # noqa: E402
from harness.cli import interrupt_on_sigterm  # noqa: E402
from harness.hunt import HuntPlan, HuntResult, hunt  # noqa: E402
from harness.verdicts import ERROR, RunError  # noqa: E402
from store.failpoints import FAILPOINTS  # noqa: E402

CONTROL = "control"


@dataclass(frozen=True)
class Row:
    spec: str
    bug: str  # a failpoint, or "control"
    result: HuntResult

    @property
    def found(self) -> int:
        return self.result.count(Verdict.INVALID)

    @property
    def runs(self) -> int:
        return len(self.result.runs)

    def medians(self) -> tuple[float | None, float | None]:
        found = [r.outcome.violation for r in self.result.runs if r.outcome.violation]
        at = [v.at_s for v in found]
        after = [v.after_fault_s for v in found if v.after_fault_s is not None]
        return (statistics.median(at) if at else None,
                statistics.median(after) if after else None)

    def line(self) -> str:
        at, after = self.medians()
        show = lambda x: "-" if x is None else f"{x:.1f} s"  # noqa: E731
        other = {word: n for word, n in (("unknown", self.result.count(Verdict.UNKNOWN)),
                                         (ERROR, self.result.count(RunError))) if n}
        extra = ("  (" + ", ".join(f"{n} {v}" for v, n in other.items()) + ")") if other else ""
        if self.bug == CONTROL:
            valid = self.result.count(Verdict.VALID)
            return f"| {self.spec} | control (no failpoint) | valid {valid}/{self.runs} | " \
                   f"- | - |{extra}"
        return (f"| {self.spec} | {self.bug} | found {self.found}/{self.runs} | {show(at)} | "
                f"{show(after)} |{extra}")


def spec_with(spec: Path, failpoints: list[str], out: Path) -> Path:
    data = yaml.safe_load(spec.read_text())
    options = dict(data.get("system_options") or {})
    options["failpoints"] = failpoints
    data["system_options"] = options
    data["name"] = f"{data.get('name', spec.stem)}-{failpoints[0] if failpoints else CONTROL}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", action="append", help="default specs/demo.yaml; repeatable")
    ap.add_argument("--failpoints", help="comma-separated (default: every failpoint a "
                    "black-box run can expose; forget-vote-on-restart is the simulator's)")
    ap.add_argument("--seeds", type=int, default=10, help="runs per bug (seeds 1..N)")
    ap.add_argument("--controls", type=int, default=20, help="control runs (seeds 1..C)")
    ap.add_argument("--time-limit", type=float, help="override the spec's")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--out", default="/tmp/detection")
    args = ap.parse_args(argv)
    names = (args.failpoints.split(",") if args.failpoints
             else sorted(n for n, f in FAILPOINTS.items() if f.black_box))
    unknown = [n for n in names if n not in FAILPOINTS]
    if unknown:
        print(f"unknown failpoint(s) {', '.join(unknown)}; known: {', '.join(FAILPOINTS)}",
              file=sys.stderr)
        return 3
    out = Path(args.out)
    run_args = ("--time-limit", str(args.time_limit)) if args.time_limit else ()
    rows: list[Row] = []
    # As `splitbrain hunt`: SIGTERM unwinds like Ctrl-C, so every run removes what it made.
    interrupt_on_sigterm()
    print("| spec | bug | found | median first violation | median after its fault |")
    print("|---|---|---|---|---|", flush=True)
    for spec in [Path(s) for s in (args.spec or ["specs/demo.yaml"])]:
        plan_for = [(n, [n], args.seeds) for n in names] + [(CONTROL, [], args.controls)]
        for bug, failpoints, runs in plan_for:
            if runs <= 0:
                continue
            where = out / spec.stem / bug
            plan = HuntPlan(str(spec_with(spec, failpoints, where)), where, runs, None,
                            args.parallel, keep_going=True, run_args=run_args)
            result = hunt(plan, say=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
            row = Row(spec.stem, bug, result)
            rows.append(row)
            print(row.line(), flush=True)
            if bug == CONTROL:
                for r in result.runs:
                    if r.outcome.verdict is Verdict.INVALID:
                        v = r.outcome.violation
                        print(f"  FALSE ALARM seed {r.seed}: "
                              f"{v.explanation if v else 'invalid'} ({r.outcome.run_dir})")
            (out / "detection.json").write_text(json.dumps(
                [{"spec": x.spec, "bug": x.bug, "hunt": x.result.to_json()} for x in rows],
                indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
