"""`splitbrain check`: verdicts for history files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from checker.check import FileResult, check_file
from checker.explain import Window
from checker.formats import FORMATS
from checker.formats.bounds import check_value_text
from checker.history import HistoryError
from checker.models import MODELS, UNSET
from checker.txn.cli import parse_models, run_txn_check
from checker.txn.history import WORKLOADS
from checker.txn.models import MODELS as TXN_MODELS

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_BAD_INPUT = 0, 1, 2, 3
DEFAULT_TIME_LIMIT = 600.0
DEFAULT_MEMORY_MB = 4096


def add_check_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="check history files for linearizability",
        description="Check each history file and print a verdict per file. Exit 0 when all "
        "are valid, 1 when any is invalid, 2 when some are unknown and none invalid, 3 on "
        "bad input or usage.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="history files")
    p.add_argument("--model", default="auto", choices=["auto", *MODELS],
                   help="the sequential model (default: guessed from the operations)")
    p.add_argument("--init", metavar="VALUE", help="the model's initial value, as JSON")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS],
                   help="history format (default: detected from the content)")
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML (checker/junit.py)")
    p.add_argument("--time-limit", type=_positive, default=DEFAULT_TIME_LIMIT,
                   metavar="SECONDS", help="give up (verdict unknown) after this long per file")
    p.add_argument("--memory-limit", type=_positive, default=DEFAULT_MEMORY_MB, metavar="MB",
                   help="give up (verdict unknown) past this resident memory per process")
    p.add_argument("--explain-time", type=_positive, default=None, metavar="SECONDS",
                   help="explain each invalid key for up to this long (default: as long as "
                   "its check took, at least 0.2 s; never past --time-limit)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for checking keys in parallel (default: one per core)")
    p.add_argument("--workload", choices=WORKLOADS, default=None,
                   help="check transactions instead (Elle's analysis, docs/txn.md): "
                   "append (list-append) or wr (rw-register)")
    p.add_argument("--consistency-models", type=parse_models, default=None,
                   metavar="MODEL[,MODEL]",
                   help="with --workload: the models the history must satisfy (default: "
                   f"strict-serializable; known: {', '.join(TXN_MODELS)})")
    p.set_defaults(run=run_check)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def run_check(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if args.workload is not None:
        if args.model != "auto" or args.init is not None:
            print("splitbrain check: --model and --init are for linearizability; "
                  "--workload checks transactions", file=err)
            return EXIT_BAD_INPUT
        return run_txn_check(args, out, err)
    if args.consistency_models is not None:
        print("splitbrain check: --consistency-models needs --workload", file=err)
        return EXIT_BAD_INPUT
    initial: Any = UNSET
    if args.init is not None:
        try:
            check_value_text(args.init, "--init", None)
            initial = json.loads(args.init)
        except HistoryError as e:
            print(f"splitbrain check: {e}", file=err)
            return EXIT_BAD_INPUT
        except json.JSONDecodeError as e:
            print(f"splitbrain check: --init is not JSON: {e.msg} in {args.init!r}", file=err)
            return EXIT_BAD_INPUT
    codes = []
    checked: list[dict[str, Any]] = []  # for --junit
    for path in args.files:
        try:
            result = check_file(
                path,
                model=args.model,
                initial=initial,
                fmt=args.format,
                time_limit=args.time_limit,
                memory_limit=int(args.memory_limit * 2**20),
                workers=args.workers,
                explain=True if args.explain_time is None else args.explain_time,
            )
        except HistoryError as e:
            print(f"splitbrain check: {e}", file=err)
            checked.append({"file": path, "valid": None, "error": str(e)})
            if args.json:
                print(json.dumps({"file": path, "valid": None, "error": str(e)}), file=out)
            codes.append(EXIT_BAD_INPUT)
            continue
        valid = result.result.valid
        checked.append(result.to_json())
        codes.append(EXIT_VALID if valid is True else EXIT_INVALID if valid is False
                     else EXIT_UNKNOWN)
        try:
            if args.json:
                print(json.dumps(result.to_json(), default=str, ensure_ascii=False), file=out)
            else:
                print_human(result, out)
            out.flush()
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python's own advice
            return codes[-1]
    if args.junit:
        from checker.junit import write_check

        write_check(checked, args.junit)
    for code in (EXIT_BAD_INPUT, EXIT_INVALID, EXIT_UNKNOWN):
        if code in codes:
            return code
    return EXIT_VALID


def _window_where(w: Window) -> str:
    recorded = [op.operation for op in w.ops]
    if recorded and all(op is not None and op.line is not None for op in recorded):
        lines = [n for op in recorded if op is not None
                 for n in (op.line, op.completed_line) if n is not None]
        return f"lines {min(lines)}..{max(lines)}"
    return f"indexes {w.first_index}..{w.last_index}"


def print_human(fr: FileResult, out: TextIO) -> None:
    r = fr.result
    verdict = {True: "valid", False: "NOT LINEARIZABLE"}.get(r.valid, "unknown")  # type: ignore[arg-type]
    keys = f", {len(r.keys)} keys" if len(r.keys) > 1 else ""
    print(f"{fr.file}: {verdict} (model {r.model}, {r.ops} operations{keys}, "
          f"{r.seconds:.3f} s)", file=out)
    for k in r.keys:
        if k.valid is True:
            continue
        name = "" if k.key is None else f"key {k.key!r}: "
        if k.valid == "unknown":
            print(f"  {name}unknown: {k.reason}", file=out)
            continue
        ce = k.counterexample
        if ce is None:
            print(f"  {name}not linearizable", file=out)
            continue
        print(f"  {ce.explanation}", file=out)
        op = ce.op
        print(f"    op: process {op.process} {op.description} ({op.where()})", file=out)
        if ce.proof is not None and ce.proof.zones and ce.proof.zones != ce.explanation:
            print(f"    proof: {ce.proof.zones}", file=out)
        w = ce.window
        if not w.verified:
            start = "not verified in the time allowed"
        elif w.initial == "any":
            start = "fails from any initial state"
        else:
            start = "fails from the initial state"
        print(f"    smallest failing window: {_window_where(w)}, {len(w.ops)} operations, "
              f"{start}", file=out)
        for path in ce.partial_linearizations[:1]:
            print(f"    longest partial linearization found ({path.length} operations, "
                  f"starting from {path.origin()}):", file=out)
            if path.omitted:
                print(f"      … {path.omitted} earlier operations", file=out)
            for step in path.steps[-8:]:
                print(f"      {step.op.description:<40} → {step.state}", file=out)
