"""`splitbrain check --workload append|wr`: the transactional checker on history files."""

from __future__ import annotations

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, TextIO

from checker.history import HistoryError
from checker.txn.models import DEFAULT_MODELS, MODELS
from checker.txn.result import Verdict

if TYPE_CHECKING:
    from checker.txn.check import TxnFileResult

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_BAD_INPUT = 0, 1, 2, 3
_CODE = {Verdict.VALID: EXIT_VALID, Verdict.INVALID: EXIT_INVALID,
         Verdict.UNKNOWN: EXIT_UNKNOWN}


def parse_models(text: str) -> tuple[str, ...]:
    """`--consistency-models`: names separated by commas."""
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in models if m not in MODELS]
    if not models or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown consistency model {unknown[0] if unknown else text!r}; known: "
            + ", ".join(MODELS))
    return models


def run_txn_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from checker.txn.check import check_file  # networkx: only when checking transactions

    models = args.consistency_models or DEFAULT_MODELS
    codes: list[int] = []
    checked: list[TxnFileResult | tuple[str, HistoryError]] = []
    limit = getattr(args, "time_limit", None)
    for path in args.files:
        try:
            fr = check_file(path, args.workload, models, fmt=args.format, time_limit=limit)
        except HistoryError as e:
            print(f"splitbrain check: {e}", file=err)
            checked.append((path, e))
            if args.json:
                print(json.dumps({"file": path, "valid": None, "error": str(e)}), file=out)
            codes.append(EXIT_BAD_INPUT)
            continue
        codes.append(_CODE[fr.result.verdict])
        checked.append(fr)
        try:
            if args.json:
                print(json.dumps(fr.to_json(), default=str, ensure_ascii=False), file=out)
            else:
                print_human(fr, out)
            out.flush()
        except BrokenPipeError:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python's own advice
            return codes[-1]
    if args.junit:
        write_junit(checked, args.junit, args.workload)
    for code in (EXIT_BAD_INPUT, EXIT_INVALID, EXIT_UNKNOWN):
        if code in codes:
            return code
    return EXIT_VALID


def print_human(fr: TxnFileResult, out: TextIO) -> None:
    r = fr.result
    print(f"{fr.file}: {r.verdict.word} for {', '.join(r.models)} ({r.workload}, {r.txns} "
          f"transactions, {r.seconds:.3f} s)", file=out)
    if r.counts:
        print("  anomalies: " + ", ".join(f"{n} ×{c}" for n, c in sorted(r.counts.items())),
              file=out)
        if r.not_models:
            print(f"  not {', '.join(r.not_models)}"
                  + (f" (nor {', '.join(r.also_not)})" if r.also_not else ""), file=out)
        print(f"  strongest models still satisfied: "
              f"{', '.join(r.strongest_satisfied) or 'none'}", file=out)
    if r.incomplete:
        print(f"  incomplete: {r.incomplete}", file=out)
    for a in r.anomalies:
        print(f"  {a.name}: {a.explanation[0]}", file=out)
        for line in a.explanation[1:]:
            print(f"    {line}", file=out)


def write_junit(files: list[TxnFileResult | tuple[str, HistoryError]], path: str,
                workload: str) -> None:
    """One suite per file and in it one test case for the transactional checker."""
    from checker.junit import case, write

    root = ET.Element("testsuites", name="splitbrain check")
    name = f"txn-{workload}"
    for fr in files:
        if isinstance(fr, tuple):
            file, error = fr
            suite = ET.SubElement(root, "testsuite", name=file, time="0.000")
            case(suite, file, name, error=("bad input", str(error)))
            continue
        r = fr.result
        suite = ET.SubElement(root, "testsuite", name=fr.file, time=f"{r.seconds:.3f}")
        if r.verdict == Verdict.INVALID:
            text = "\n\n".join("\n".join([a.name, *a.explanation]) for a in r.anomalies)
            case(suite, fr.file, name, r.seconds, failure=(
                f"anomalies {', '.join(r.anomaly_types)}: not "
                f"{', '.join(r.not_models or r.models)}", text))
        elif r.verdict == Verdict.UNKNOWN:
            case(suite, fr.file, name, r.seconds, skipped=str(r.incomplete))
        else:
            case(suite, fr.file, name, r.seconds)
    write(root, path)
