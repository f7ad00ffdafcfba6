"""Benchmark of the linearizability checker. It prints figures and asserts nothing.

1. Every history in the shared reference corpus, checked against its known verdict.
2. 102 synthetic etcd-like register histories, shaped like porcupine's Jepsen etcd set.
3. Two large synthetic histories, each against a 30 s target.
4. Histories full of timeouts (issue 10): one key, 10 processes, reads 50 %, cas 15 %,
   writes the rest, 30 % of writes and cas time out and half of those take effect;
   valid, with one stale read, with one read inversion around a timed-out write;
   500 to 10,000 operations. Each file is checked by the whole command in a fresh
   process (`splitbrain check`), whose wall time and peak memory are measured; with
   the etcd model (failed cas are observations) and the cas-register model (failed
   cas say nothing). Porcupine side by side when PORCUPINE_BIN names a binary that
   takes `-init N -timeout S [-verbose] FILE...` and prints
   `file<TAB>Ok|Illegal|Unknown<TAB>seconds` per file (not built here); section 4 runs
   it without -verbose (deciding only), section 5 both ways.
5. The whole command on the shared corpus, and on porcupine's 102 Jepsen etcd logs when
   SPLITBRAIN_ETCD_LOGS names their folder (porcupine's too, with PORCUPINE_BIN).
6. The time limit: a history the search cannot finish, checked with --time-limit 1, 2, 5.
7. Hostile input (issue 19): a 200 MB file that is one line, a value of 100,000 digits,
   one nested 100,000 deep, in each format: the whole command's exit status, wall time
   and peak memory (the bounds of docs/history.md: exit 3 and memory near Python's own).

Times are wall clock (time.perf_counter). "ops" means operations, i.e. invocations
paired with their completions. The machine is shared, so the check times in
sections 1 and 2 are the minimum of several runs. Run with `make bench`, or
`python bench/checker_bench.py 4 5` for some sections; SPLITBRAIN_CORPUS overrides
where the corpus is found; SPLITBRAIN_BENCH_LIMIT (default 60) and PORCUPINE_TIMEOUT
(default 30) are the per-file time limits of section 4, BENCH_MEMORY_CAP_MIB (default
3072) the resident memory past which a measured process is killed.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.formats import read_ops, write_jsonl
from checker.history import Operation, pair
from checker.linearizable import CheckResult, check_operations
from checker.models import make_model
from checker.simulate import (
    RegisterWorkload,
    Workload,
    initial,
    jepsen_log_lines,
    register_history,
    simulate,
)

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
        info += sum(o.outcome == "info" for o in operations)
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
                str(sum(o.outcome == "info" for o in operations)),
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


# -- 4. histories full of timeouts ------------------------------------------------------------

TIMEOUT_SIZES = (500, 1_000, 2_000, 5_000, 10_000)
TIMEOUT_KINDS = (None, "stale-read", "inversion")
TIMEOUT_SHAPE = RegisterWorkload(processes=10, p_read=0.5, p_cas=0.15, p_timeout=0.3)
TARGET_2K_S, TARGET_10K_S, TARGET_MIB = 2.0, 30.0, 1024


@dataclass
class Run:
    verdict: str  # valid, invalid, unknown, error
    seconds: float
    peak_mib: float
    detail: str = ""


MEMORY_CAP_MIB = float(os.environ.get("BENCH_MEMORY_CAP_MIB", "3072"))
KILLED = -999  # exit code of a process killed past MEMORY_CAP_MIB


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20
    except OSError:
        return 0.0


def _hwm_mib(pid: int) -> float:
    """The process's own peak resident memory (VmHWM) so far; 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_process(argv: Sequence[str], timeout: float) -> tuple[int, str, float, float]:
    """(exit code, stdout, wall seconds, peak RSS MiB) of one process. The peak is its
    VmHWM, read every 5 ms while it runs: its rusage would not do, as Linux counts in
    a child's ru_maxrss the resident size of the parent it was forked from (this
    script). A process past MEMORY_CAP_MIB resident (the machine is shared) is
    killed: KILLED."""
    started = time.perf_counter()
    killed = False
    peak = 0.0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        deadline = started + timeout
        while True:
            peak = max(peak, _hwm_mib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline or _rss_mib(proc.pid) > MEMORY_CAP_MIB:
                killed = _rss_mib(proc.pid) > MEMORY_CAP_MIB
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        proc.returncode = KILLED if killed else os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if not peak:  # ended before it could be read: its rusage, an upper bound
        peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / 2**20
    return proc.returncode, text, seconds, peak


def splitbrain_argv() -> list[str]:
    return [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]


def ours(path: str, model: str, limit: float) -> Run:
    argv = [*splitbrain_argv(), "check", "--model", model, "--init", "0",
            "--time-limit", str(limit), path]
    code, out, seconds, mib = run_process(argv, limit + 30)
    verdict = {0: "valid", 1: "invalid", 2: "unknown", KILLED: "killed"}.get(code, "error")
    first = out.splitlines()[0] if out else ""
    return Run(verdict, seconds, mib, first)


def porcupine(paths: Sequence[str], limit: float) -> tuple[list[str], float, float]:
    """Porcupine's verdicts for `paths` in one process, its wall time and peak MiB."""
    binary = os.environ.get("PORCUPINE_BIN")
    assert binary
    argv = [binary, "-init", "0", "-timeout", str(limit), *paths]  # check only: its fastest
    code, out, seconds, mib = run_process(argv, limit * len(paths) + 30)
    if code == KILLED:
        return [f"killed past {MEMORY_CAP_MIB:.0f} MiB"] * len(paths), seconds, mib
    names = {"Ok": "valid", "Illegal": "invalid", "Unknown": "unknown"}
    verdicts = [names.get(line.split("\t")[1], "error") for line in out.splitlines()
                if line.count("\t") >= 2]
    return verdicts, seconds, mib


def timeout_history(n: int, inject: str | None, folder: str) -> tuple[str, int, int]:
    """The history's file (Jepsen log lines), its seed and its timed-out operations."""
    seed = 1
    while True:
        try:
            w = RegisterWorkload(ops=n, processes=TIMEOUT_SHAPE.processes,
                                 p_read=TIMEOUT_SHAPE.p_read, p_cas=TIMEOUT_SHAPE.p_cas,
                                 p_timeout=TIMEOUT_SHAPE.p_timeout, inject=inject)
            ops = register_history(seed, w)
            break
        except ValueError:
            seed += 1
    path = os.path.join(folder, f"register-{n}-{inject or 'valid'}-seed{seed}.log")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(jepsen_log_lines(ops))
    return path, seed, sum(o.type == "info" for o in ops)


def cell(run: Run, expected: str) -> str:
    mark = "" if run.verdict == expected else f" {run.verdict.upper()}"
    return f"{run.seconds:.2f} s, {run.peak_mib:.0f} MiB{mark}"


def bench_timeouts() -> None:
    section("4. Histories full of timeouts (issue 10), whole command per file")
    limit = float(os.environ.get("SPLITBRAIN_BENCH_LIMIT", "60"))
    p_limit = float(os.environ.get("PORCUPINE_TIMEOUT", "30"))
    print(f"processes past {MEMORY_CAP_MIB:.0f} MiB resident are killed (the machine is "
          "shared; BENCH_MEMORY_CAP_MIB)")
    have_porcupine = bool(os.environ.get("PORCUPINE_BIN"))
    w = TIMEOUT_SHAPE
    print(f"checker.simulate.register_history: 1 key, {w.processes} processes, reads "
          f"{w.p_read:.0%}, cas {w.p_cas:.0%}, writes the rest; {w.p_timeout:.0%} of writes "
          "and cas time out, half of those take effect; unique values; initial value 0")
    print(f"each cell: wall time of `splitbrain check --model M --init 0 --time-limit "
          f"{limit:g} FILE` in a fresh process (start, parse, check, explain) and its peak "
          "RSS; a verdict is shown only when it is not the expected one")
    if have_porcupine:
        print(f"porcupine: {os.environ['PORCUPINE_BIN']} -init 0 -timeout {p_limit:g} "
              "FILE (check only, no partial linearizations; porcupine's etcd model: failed "
              "cas are observations), same files")
    else:
        print("porcupine: not measured (set PORCUPINE_BIN)")
    print(f"targets (issue 10): decided, < {TARGET_2K_S:g} s at 2,000 ops and < "
          f"{TARGET_10K_S:g} s at 10,000, < {TARGET_MIB} MiB")
    headers = ["history", "ops", "seed", "timed out", "etcd model", "cas-register model",
               "porcupine", "status"]
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        for n in TIMEOUT_SIZES:
            for inject in TIMEOUT_KINDS:
                path, seed, info = timeout_history(n, inject, folder)
                expected = "valid" if inject is None else "invalid"
                etcd = ours(path, "etcd", limit)
                reg = ours(path, "cas-register", limit)
                if have_porcupine:
                    verdicts, p_s, p_mib = porcupine([path], p_limit)
                    got = verdicts[0] if verdicts else "error"
                    mark = "" if got == expected else f" {got.upper()}"
                    pcell = f"{p_s:.2f} s, {p_mib:.0f} MiB{mark}"
                else:
                    pcell = "not measured"
                target = TARGET_2K_S if n <= 2_000 else TARGET_10K_S
                worst = max(etcd.seconds, reg.seconds)
                ok = (etcd.verdict == reg.verdict == expected and worst < target
                      and max(etcd.peak_mib, reg.peak_mib) < TARGET_MIB)
                rows.append([inject or "valid", f"{n:,}", str(seed), str(info),
                             cell(etcd, expected), cell(reg, expected), pcell,
                             "within" if ok else "MISSED"])
                print(f"  done: {rows[-1][0]} {n}", file=sys.stderr)
    table(headers, rows, left=1)


# -- 5. the whole command on the corpora ---------------------------------------------------------

CORPUS_GROUPS = (
    ("knossos/cas-register/good", "cas-register", "0", 0),
    ("knossos/cas-register/bad", "cas-register", "0", 1),
    ("knossos/multi-register/good", "multi-register", '{"x": 0, "y": 0}', 0),
    ("knossos/mutex/bad", "mutex", "false", 1),
    ("porcupine-kv", "auto", None, 1),
)


def bench_whole_command() -> None:
    section("5. The whole command (start, parse, check, explain) on the corpora")
    print("one `splitbrain check` process per folder, all its files at once; wall time "
          "and peak RSS of that process; exit code 0 = all valid, 1 = some invalid")
    root = corpus_root()
    rows: list[list[str]] = []
    total = 0.0
    if root.is_dir():
        for folder, model, init, expected_code in CORPUS_GROUPS:
            files = sorted(str(p) for p in (root / folder).glob("*") if p.is_file()
                           and p.suffix != ".md")
            if not files:
                continue
            argv = [*splitbrain_argv(), "check", "--model", model]
            argv += ["--init", init] if init is not None else []
            code, out, seconds, mib = run_process([*argv, *files], 600)
            total += seconds
            valid = sum(": valid" in line for line in out.splitlines())
            invalid = sum(": NOT LINEARIZABLE" in line for line in out.splitlines())
            rows.append([folder, str(len(files)), f"{valid} / {invalid}", f"{seconds:.2f}",
                         f"{mib:.0f}", "OK" if code == expected_code else f"exit {code}"])
        rows.append(["shared corpus, total", "", "", f"{total:.2f}", "", ""])
    logs = os.environ.get("SPLITBRAIN_ETCD_LOGS")
    if logs and os.path.isdir(logs):
        files = sorted(os.path.join(logs, f) for f in os.listdir(logs) if f.endswith(".log"))
        code, out, seconds, mib = run_process([*splitbrain_argv(), "check", *files], 600)
        valid = sum(": valid" in line for line in out.splitlines())
        invalid = sum(": NOT LINEARIZABLE" in line for line in out.splitlines())
        rows.append([f"porcupine's etcd logs ({logs})", str(len(files)),
                     f"{valid} / {invalid}", f"{seconds:.2f}", f"{mib:.0f}", f"exit {code}"])
        if os.environ.get("PORCUPINE_BIN"):
            # Without -verbose porcupine only decides; with it, it also computes the
            # partial linearizations its visualisation shows (as our explanations do).
            for flags, label in (([], "check only"), (["-verbose"], "-verbose")):
                argv = [os.environ["PORCUPINE_BIN"], "-init", "nil", *flags, *files]
                _, pout, p_s, p_mib = run_process(argv, 600)
                p_valid = sum("\tOk\t" in line for line in pout.splitlines())
                p_invalid = sum("\tIllegal\t" in line for line in pout.splitlines())
                rows.append([f"  the same, porcupine ({label})", str(len(files)),
                             f"{p_valid} / {p_invalid}", f"{p_s:.2f}", f"{p_mib:.0f}", ""])
    else:
        rows.append(["porcupine's etcd logs", "", "", "not measured (set SPLITBRAIN_ETCD_LOGS)",
                     "", ""])
    table(["files", "count", "valid / invalid", "wall s", "peak MiB", "exit"], rows)


# -- 6. the time limit -------------------------------------------------------------------------

BUDGET_LIMITS = (1.0, 2.0, 5.0)
BUDGET_CASE = Workload(kind="kv-append", ops=4000, processes=20, keys=1, p_info=0.3)


def bench_time_limit() -> None:
    section("6. The time limit is a promise (--time-limit)")
    w = BUDGET_CASE
    print(f"a history the search cannot finish: checker.simulate seed 0, kind={w.kind}, "
          f"ops={w.ops}, processes={w.processes}, p_info={w.p_info}; whole command in a "
          "fresh process; target: wall time within 1 s of the limit (plus Python's start)")
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kv-append.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(write_jsonl(o) for o in simulate(0, w))
        for limit in BUDGET_LIMITS:
            argv = [*splitbrain_argv(), "check", "--model", "kv-append", "--time-limit",
                    str(limit), path]
            code, _, seconds, mib = run_process(argv, limit + 60)
            verdict = {0: "valid", 1: "invalid", 2: "unknown"}.get(code, f"exit {code}")
            rows.append([f"{limit:g}", verdict, f"{seconds:.2f}", f"{seconds - limit:+.2f}",
                         f"{mib:.0f}", "within" if seconds < limit + 1 else "OVER"])
    table(["limit s", "verdict", "wall s", "wall - limit", "peak MiB", "status"], rows)


HOSTILE_LINE_MB = 200
_OP_JSON = '{{"index":0,"process":0,"type":"invoke","f":"write","value":{}}}\n'
_OP_EDN = "{{:index 0 :process 0 :type :invoke :f :write :value {}}}\n"
_OP_LOG = "INFO  jepsen.util - 0\t:invoke\t:write\t{}\n"


def bench_hostile_input() -> None:
    section("7. Hostile input: bounded lines, nesting and digits (docs/history.md)")
    print("whole command in a fresh process; target: exit 3 (one line naming file, line and "
          "bound) and peak memory independent of the file's size")
    digits, deep = "7" * 100_000, "[" * 100_000 + "]" * 100_000
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        cases: list[tuple[str, str, str]] = []
        giant = os.path.join(folder, "giant.jsonl")
        with open(giant, "w", encoding="utf-8") as f:
            f.write(_OP_JSON.format('"').rstrip("}\n"))
            chunk = "x" * 2**20
            for _ in range(HOSTILE_LINE_MB):
                f.write(chunk)
            f.write('"}\n')
        cases += [(f"{HOSTILE_LINE_MB} MB, one line", "jsonl", giant),
                  (f"{HOSTILE_LINE_MB} MB, one line", "edn", giant)]
        for fmt, template, suffix in (("jsonl", _OP_JSON, "jsonl"), ("edn", _OP_EDN, "edn"),
                                      ("jepsen-log", _OP_LOG, "log")):
            for label, value in (("100,000 digits", digits), ("nested 100,000 deep", deep)):
                path = os.path.join(folder, f"{label.split()[0]}-{fmt}.{suffix}")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(template.format(value))
                cases.append((label, fmt, path))
        for label, fmt, path in cases:
            argv = [*splitbrain_argv(), "check", "--format", fmt, path]
            code, _, seconds, mib = run_process(argv, 120)
            size = os.path.getsize(path) / 2**20
            rows.append([label, fmt, f"{size:.1f}", f"exit {code}", f"{seconds:.2f}",
                         f"{mib:.0f}"])
    table(["input", "format", "file MiB", "status", "wall s", "peak MiB"], rows, left=2)


def seeds_used() -> Iterable[str]:
    yield f"etcd-like histories {ETCD_SEEDS.start}..{ETCD_SEEDS.stop - 1}"
    for case in SCALE_CASES:
        yield f"scale {case.label.split()[0]} {case.seed}"
    yield "timeouts: the first seed from 1 where the injection finds a place (printed)"


SECTIONS = {"1": bench_corpus, "2": bench_etcd_like, "3": bench_scale, "4": bench_timeouts,
            "5": bench_whole_command, "6": bench_time_limit, "7": bench_hostile_input}


def main() -> None:
    started = time.perf_counter()
    chosen = sys.argv[1:] or list(SECTIONS)
    print(
        f"splitbrain checker benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {os.cpu_count()} CPUs, {platform.platform()}"
    )
    print(f"seeds: {'; '.join(seeds_used())} (checker.simulate; the corpus needs none)")
    for name in chosen:
        SECTIONS[name]()
    print()
    print(f"benchmark took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
