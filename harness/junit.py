"""JUnit XML and a CI summary for a run (`splitbrain run --junit`, `splitbrain report
--junit`); the test cases are described in checker/junit.py."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from checker.junit import case, write
from checker.verdict import Verdict
from harness.checkers import named


def run_suite(results: dict[str, Any], run_dir: str | Path | None = None) -> ET.Element:
    test = str(results.get("test", "run"))
    classname = f"splitbrain.{test}"
    suite = ET.Element("testsuite", name=classname, timestamp=str(results.get("started", "")),
                       time=f"{float(results.get('duration_s') or 0.0):.3f}")
    props = ET.SubElement(suite, "properties")
    spec = results.get("spec") or {}
    system = results.get("system") or {}
    for name, value in (("system", system.get("name")), ("version", system.get("version")),
                        ("seed", spec.get("seed")), ("run_id", results.get("run_id")),
                        ("results", str(run_dir) if run_dir is not None else None)):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=str(value))
    checkers = results.get("checkers") or {}
    if results.get("error") and not checkers:
        case(suite, classname, "run", error=("the test could not run", str(results["error"])))
        return suite
    for name, checked in checkers.items():
        named(name).junit(suite, classname, checked)
    if results.get("interrupted"):
        case(suite, classname, "run", skipped="the run was interrupted: verdicts are partial")
    return suite


def write_run(results: dict[str, Any], path: str | Path,
              run_dir: str | Path | None = None) -> None:
    root = ET.Element("testsuites", name="splitbrain")
    root.append(run_suite(results, run_dir))
    write(root, path)


def summary(results: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """A few lines a CI log shows well: the verdict first, each checker, where to look.
    Under GitHub Actions each invalid key is also an ::error annotation."""
    test = results.get("test", "run")
    verdict = ("could not run" if results.get("error") and not results.get("checkers")
               else Verdict.of(results.get("valid")).word)
    lines = [f"SPLITBRAIN {test}: {verdict}"
             + (" (interrupted)" if results.get("interrupted") else "")]
    if results.get("error"):
        lines.append(f"  error: {results['error']}")
    annotations = []
    for name, checked in (results.get("checkers") or {}).items():
        told = named(name).told(checked)
        lines.append(f"  {name}: {Verdict.of(checked.get('valid')).word}{told.detail}")
        annotations.extend(told.annotations)
    stats = results.get("stats")
    if stats:
        ok = sum(c.get("ok", 0) for c in stats["ops"].values())
        lines.append(f"  {ok} ok operations, {stats['ok_per_s']} ok/s, availability "
                     f"{stats['availability']}, {len(stats['faults'])} faults")
    if run_dir is not None:
        lines.append(f"  report: {Path(run_dir) / 'report.html'}")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        lines += [f"::error title=splitbrain {test}::{_annotation(a)}" for a in annotations[:10]]
    return "\n".join(lines)


def _annotation(text: str) -> str:
    # GitHub's workflow commands: %, CR and LF must be escaped in the message
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
