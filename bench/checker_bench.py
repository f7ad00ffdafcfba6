"""Benchmark of the linearizability checker. It prints figures and asserts nothing.

1. Every history in the shared reference corpus, checked against its known verdict.
2. 102 synthetic etcd-like register histories, shaped like porcupine's Jepsen etcd set.
3. Two large synthetic histories, each against a 30 s target.

Times are wall clock (time.perf_counter). "ops" means operations, i.e. invocations
paired with their completions. The machine is shared, so the check times in
sections 1 and 2 are the minimum of several runs. Run with `make bench`;
SPLITBRAIN_CORPUS overrides where the corpus is found.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.formats import read_ops
from checker.history import Operation, pair
from checker.linearizable import CheckResult, check_operations
from checker.models import make_model
from checker.simulate import Workload, initial, simulate

CORPUS_REPEATS = 5
ETCD_REPEATS = 3
ETCD_SEEDS = range(102)
ETCD_WORKLOAD = Workload(kind="etcd", ops=85, processes=5, keys=1, p_info=0.15)
SCALE_TARGET_S = 30.0
REFERENCE = "shared/reference/figures.md"
PORCUPINE_KV_S = {"c50-ok.txt": 0.254, "c50-bad.txt": 0.037}
PORCUPINE_ETCD_TOTAL_S = 1.0
PORCUPINE_ETCD_SLOWEST_S = 0.340
GROUPED_PREFIX = "memstress"  # files summarised in one row per folder


@dataclass(frozen=True)
class Expectation:
    model: str
    initial: Any
    valid: bool


@dataclass
class FileRun:
    name: str
    model: str
    ops: int
    parse_s: float
    check_s: float
    verdict: str
    expected: bool

    @property
    def right(self) -> bool:
        return self.verdict == verdict_name(self.expected)


@dataclass(frozen=True)
class ScaleCase:
    label: str
    seed: int
    workload: Workload
    model: str


SCALE_CASES = (
    ScaleCase(
        "(a) 100k ops, 100 keys, concurrency 20, 2% info",
        1,
        Workload(kind="etcd", ops=100_000, processes=20, keys=100, p_info=0.02),
        "kv",
    ),
    ScaleCase(
        "(b) 5k ops, 1 key, concurrency 10, 5% info",
        2,
        Workload(kind="etcd", ops=5_000, processes=10, keys=1, p_info=0.05),
        "etcd",
    ),
)


# -- formatting ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def verdict_name(valid: object) -> str:
    if valid is True:
        return "valid"
    if valid is False:
        return "invalid"
    return str(valid)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> None:
    """Print rows in aligned columns: the first `left` columns left-aligned, the rest right."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def section(title: str) -> None:
    print()
    print(f"== {title} ==")


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident set size so far of this process and of its largest reaped child."""
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit
    return own / 2**20, children / 2**20


# -- measuring -------------------------------------------------------------------------------


def timed_check(
    model_name: str,
    init: Any,
    operations: list[Operation],
    repeats: int,
    workers: int | None,
) -> tuple[float, str, CheckResult]:
    """Best time of `repeats` checks, the verdict ("inconsistent" if runs disagree), a result."""
    model = make_model(model_name, init)
    times: list[float] = []
    results: list[CheckResult] = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        results.append(check_operations(model, operations, workers=workers))
        times.append(time.perf_counter() - started)
    verdicts = {verdict_name(r.valid) for r in results}
    verdict = verdicts.pop() if len(verdicts) == 1 else "inconsistent"
    return min(times), verdict, results[-1]


# -- 1. the reference corpus -----------------------------------------------------------------


def corpus_root() -> Path:
    override = os.environ.get("SPLITBRAIN_CORPUS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


def expectation(rel: Path) -> Expectation | None:
    """The model and verdict shared/corpus/README.md gives for a file, if any."""
    folder = "/".join(rel.parts[:-1])
    known = {
        "knossos/cas-register/good": Expectation("cas-register", 0, True),
        "knossos/cas-register/bad": Expectation("cas-register", 0, False),
        "knossos/multi-register/good": Expectation("multi-register", {"x": 0, "y": 0}, True),
        "knossos/mutex/bad": Expectation("mutex", False, False),
    }
    if folder in known:
        return known[folder]
    if folder == "porcupine-kv" and rel.name.endswith("-ok.txt"):
        return Expectation("kv-append", "", True)
    if folder == "porcupine-kv" and rel.name.endswith("-bad.txt"):
        return Expectation("kv-append", "", False)
    return None


def run_file(root: Path, rel: Path, expect: Expectation) -> FileRun:
    path = root / rel
    try:
        started = time.perf_counter()
        with path.open(encoding="utf-8") as stream:
            _, ops = read_ops(stream, str(path))
            operations = list(pair(ops, str(path)))
        parse_s = time.perf_counter() - started
        check_s, verdict, _ = timed_check(
            expect.model, expect.initial, operations, CORPUS_REPEATS, workers=1
        )
    except Exception as error:  # reported as a wrong verdict, never hidden
        print(f"ERROR {rel}: {type(error).__name__}: {error}")
        return FileRun(str(rel), expect.model, 0, 0.0, 0.0, "error", expect.valid)
    return FileRun(str(rel), expect.model, len(operations), parse_s, check_s, verdict, expect.valid)


def porcupine_cells(run: FileRun) -> list[str]:
    reference = PORCUPINE_KV_S.get(Path(run.name).name)
    if reference is None:
        return ["", ""]
    return [ms(reference), f"{run.check_s / reference:.2f}x"]


def bench_corpus() -> None:
    root = corpus_root()
    section(f"1. Reference corpus: {root}")
    if not root.is_dir():
        print(f"corpus not found (set SPLITBRAIN_CORPUS); section skipped: {root}")
        return
    print(
        f"parse = read_ops + pair into a list, once; check = min of {CORPUS_REPEATS} runs of "
        "check_operations(model, operations, workers=1)"
    )
    print(f"porcupine: Go 1.19, one key at a time, from {REFERENCE}")
    files = sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".md" and not p.name.startswith(".")
    )
    runs: list[FileRun] = []
    skipped: list[Path] = []
    for rel in files:
        expect = expectation(rel)
        if expect is None:
            skipped.append(rel)
        else:
            runs.append(run_file(root, rel, expect))

    single = [r for r in runs if not Path(r.name).name.startswith(GROUPED_PREFIX)]
    groups: dict[str, list[FileRun]] = {}
    for r in runs:
        if Path(r.name).name.startswith(GROUPED_PREFIX):
            pattern = f"{Path(r.name).parent}/{GROUPED_PREFIX}*"
            groups.setdefault(pattern, []).append(r)

    headers = ["file", "model", "ops", "parse ms", "check ms", "verdict", "expected", "result"]
    headers += ["porcupine ms", "ours/porcupine"]
    rows: list[list[str]] = []
    for r in single:
        rows.append(
            [
                r.name,
                r.model,
                str(r.ops),
                ms(r.parse_s),
                ms(r.check_s),
                r.verdict,
                verdict_name(r.expected),
                "OK" if r.right else "WRONG",
                *porcupine_cells(r),
            ]
        )
    for pattern, members in groups.items():
        verdicts = sorted({m.verdict for m in members})
        wrong = [m for m in members if not m.right]
        rows.append(
            [
                f"{pattern} ({len(members)} files, summed)",
                members[0].model,
                str(sum(m.ops for m in members)),
                ms(sum(m.parse_s for m in members)),
                ms(sum(m.check_s for m in members)),
                "/".join(verdicts),
                "/".join(sorted({verdict_name(m.expected) for m in members})),
                "all OK" if not wrong else f"{len(wrong)} WRONG",
                "",
                "",
            ]
        )
    table(headers, rows, left=2)
    for r in runs:
        if not r.right:
            print(f"WRONG: {r.name}: got {r.verdict}, expected {verdict_name(r.expected)}")
    for rel in skipped:
        print(f"skipped (no known verdict in the corpus README): {rel}")

    right = sum(r.right for r in runs)
    print(
        f"total over {len(runs)} files: check {ms(sum(r.check_s for r in runs))} ms "
        f"(sum of per-file minimums), parse {ms(sum(r.parse_s for r in runs))} ms, "
        f"ops {sum(r.ops for r in runs)}"
    )
    print(f"verdicts right: {right}/{len(runs)}" + ("" if right == len(runs) else "  <-- WRONG"))


# -- 2. etcd-like register histories ---------------------------------------------------------


def bench_etcd_like() -> None:
    section("2. Jepsen etcd-like register histories")
    w = ETCD_WORKLOAD
    print(
        f"ours: {len(ETCD_SEEDS)} SYNTHETIC histories from checker.simulate "
        f"(seeds {ETCD_SEEDS.start}..{ETCD_SEEDS.stop - 1}, kind={w.kind}, ops={w.ops}, "
        f"processes={w.processes}, keys={w.keys}, p_info={w.p_info}), model etcd, initial None;"
    )
    print(
        "      the same shape as porcupine's benchmark, NOT the same files. "
        "Linearizable by construction."
    )
    print(f"porcupine: {len(ETCD_SEEDS)} real Jepsen etcd histories, from {REFERENCE}")
    print(f"check = min of {ETCD_REPEATS} runs of check_operations(workers=1) per history")
    total = 0.0
    slowest = (0.0, -1)
    valid = 0
    ops = 0
    info = 0
    for seed in ETCD_SEEDS:
        operations = list(pair(simulate(seed, w), f"etcd-seed-{seed}"))
        ops += len(operations)
        info += sum(o.result == "info" for o in operations)
        seconds, verdict, _ = timed_check(
            "etcd", initial("etcd"), operations, ETCD_REPEATS, workers=1
        )
        total += seconds
        slowest = max(slowest, (seconds, seed))
        valid += verdict == "valid"
    n = len(ETCD_SEEDS)
    rows = [
        ["histories", str(n), str(n), ""],
        ["mean ops (info) per history", f"{ops / n:.1f} ({info / n:.1f})", "about 85", ""],
        [
            "total check ms",
            ms(total),
            ms(PORCUPINE_ETCD_TOTAL_S),
            f"{total / PORCUPINE_ETCD_TOTAL_S:.3f}x",
        ],
        [
            "slowest history ms",
            f"{ms(slowest[0])} (seed {slowest[1]})",
            ms(PORCUPINE_ETCD_SLOWEST_S),
            f"{slowest[0] / PORCUPINE_ETCD_SLOWEST_S:.3f}x",
        ],
        ["valid", f"{valid}/{n}", "", ""],
    ]
    table(["", "ours (synthetic)", "porcupine (real)", "ours/porcupine"], rows)
    if valid != n:
        print(f"WRONG: {n - valid} of {n} linearizable-by-construction histories not found valid")


# -- 3. scale ---------------------------------------------------------------------------------


def bench_scale() -> None:
    section(f"3. Synthetic scale cases (target: each under {SCALE_TARGET_S:.0f} s)")
    print(
        "generated once, timed once; check = check_operations(model, operations), "
        f"default workers ({os.cpu_count()} CPUs); wall = pair + check"
    )
    print(
        "peak RSS = ru_maxrss of this process (self) and of its largest reaped worker "
        "(children), in MiB: high-water marks since the script started, not per case"
    )
    headers = ["case", "seed", "model", "ops", "keys", "info", "check s", "wall s", "verdict"]
    headers += ["target", "status", "RSS self", "RSS children"]
    rows: list[list[str]] = []
    for case in SCALE_CASES:
        w = case.workload
        history = simulate(case.seed, w)
        started = time.perf_counter()
        operations = list(pair(history, f"scale-seed-{case.seed}"))
        paired = time.perf_counter()
        result = check_operations(make_model(case.model, initial(w.kind)), operations)
        done = time.perf_counter()
        check_s, wall_s = done - paired, done - started
        own, children = peak_rss_mib()
        verdict = verdict_name(result.valid)
        status = "within" if wall_s < SCALE_TARGET_S else "OVER"
        if verdict != "valid":
            status += ", WRONG verdict"
        rows.append(
            [
                case.label,
                str(case.seed),
                case.model,
                str(len(operations)),
                str(len(result.keys)),
                str(sum(o.result == "info" for o in operations)),
                f"{check_s:.2f}",
                f"{wall_s:.2f}",
                verdict,
                f"< {SCALE_TARGET_S:.0f} s",
                status,
                f"{own:.0f}",
                f"{children:.0f}",
            ]
        )
    table(headers, rows)


def seeds_used() -> Iterable[str]:
    yield f"etcd-like histories {ETCD_SEEDS.start}..{ETCD_SEEDS.stop - 1}"
    for case in SCALE_CASES:
        yield f"scale {case.label.split()[0]} {case.seed}"


def main() -> None:
    started = time.perf_counter()
    print(
        f"splitbrain checker benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {os.cpu_count()} CPUs, {platform.platform()}"
    )
    print(f"seeds: {'; '.join(seeds_used())} (checker.simulate; the corpus needs none)")
    bench_corpus()
    bench_etcd_like()
    bench_scale()
    print()
    print(f"benchmark took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
