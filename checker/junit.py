"""JUnit XML for verdicts, as CI systems read it (docs/nightly-ci.md).

One <testsuite> per history file (`splitbrain check --junit`) or per run (`splitbrain
run --junit`, harness/junit.py); in it one <testcase> per checker, and one more per
key that is not valid, so that a CI page lists each failing key by name:

- valid: a passing test case;
- invalid: <failure> with the checker's one-line explanation as its message and the
  counterexample (the operation, the longest partial linearization, the window) as text;
- unknown (a budget ran out, the run was interrupted): <skipped> with the reason;
- bad input, or a run that could not start: <error>.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

MAX_TEXT = 20_000


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters, whatever the escaping."""
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else f"\\x{ord(c):02x}"
                   for c in text)[:MAX_TEXT]


def case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0, *,
         failure: tuple[str, str] | None = None, skipped: str | None = None,
         error: tuple[str, str] | None = None) -> ET.Element:
    tc = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name),
                       time=f"{seconds:.3f}")
    for tag, what in (("failure", failure), ("error", error)):
        if what is not None:
            el = ET.SubElement(tc, tag, message=_clean(what[0]), type=tag)
            el.text = _clean(what[1])
    if skipped is not None:
        ET.SubElement(tc, "skipped", message=_clean(skipped))
    return tc


def describe_counterexample(ce: dict[str, Any]) -> str:
    op = ce["op"]
    lines = [ce["explanation"], "",
             f"operation: process {op['process']}: {op['description']} ({op.get('result')}, "
             f"indexes {op['invoke_index']}..{op.get('complete_index')})"]
    w = ce["window"]
    lines.append(f"smallest failing window: indexes {w['first_index']}..{w['last_index']}, "
                 f"{len(w['ops'])} operations, from "
                 f"{'any state' if w['initial'] == 'any' else 'the initial state'}")
    for path in ce.get("partial_linearizations", [])[:1]:
        origin = "" if path.get("from_history_start", True) else " at the window's start"
        lines.append(f"longest partial linearization ({path['length']} ops from "
                     f"{path['initial']}{origin}):")
        if path["omitted"]:
            lines.append(f"  ... {path['omitted']} earlier operations")
        lines += [f"  {s['op']['description']:<40} -> {s['state']}" for s in path["steps"]]
        lines.append(f"  {op['description']:<40} -> cannot be linearized")
    return "\n".join(lines)


def linearizable_cases(suite: ET.Element, classname: str, checked: dict[str, Any]) -> None:
    """The checker's test case and one per key that is not valid."""
    valid = checked.get("valid")
    bad, unknown = checked.get("invalid_keys", []), checked.get("unknown_keys", [])
    seconds = float(checked.get("seconds") or 0.0)
    if valid is False:
        first = next((k["summary"]["explanation"] for k in checked.get("keys", [])
                      if k.get("summary")), "not linearizable")
        case(suite, classname, "linearizable", seconds, failure=(
            f"{len(bad)} of {checked.get('key_count')} keys not linearizable: {first}",
            "keys not linearizable: " + ", ".join(map(_show, bad))))
    elif valid == "unknown":
        case(suite, classname, "linearizable", seconds,
             skipped=f"unknown for keys {', '.join(map(_show, unknown))}")
    else:
        case(suite, classname, "linearizable", seconds)
    for k in checked.get("keys", []):
        name = "linearizable" if k.get("key") is None else f"linearizable[{_show(k['key'])}]"
        if k.get("valid") is False:
            ce = k.get("counterexample")
            brief = ce or k.get("summary")  # results.json keeps a few counterexamples whole
            message = brief["explanation"] if brief else "not linearizable"
            case(suite, classname, name, float(k.get("seconds") or 0.0),
                 failure=(message, describe_counterexample(ce) if ce else message))
        elif k.get("valid") == "unknown":
            case(suite, classname, name, float(k.get("seconds") or 0.0),
                 skipped=f"unknown: {k.get('reason', 'a budget ran out')}")


def totals(root: ET.Element) -> ET.Element:
    """Fill in the counts of every suite and of the whole document."""
    sums = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        counts = {"tests": len(cases),
                  "failures": sum(1 for c in cases if c.find("failure") is not None),
                  "errors": sum(1 for c in cases if c.find("error") is not None),
                  "skipped": sum(1 for c in cases if c.find("skipped") is not None)}
        for name, n in counts.items():
            suite.set(name, str(n))
            sums[name] += n
    for name, n in sums.items():
        root.set(name, str(n))
    return root


def write(root: ET.Element, path: str | Path) -> None:
    totals(root)
    ET.indent(root)
    path = Path(path)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_check(files: list[dict[str, Any]], path: str | Path) -> None:
    """`splitbrain check --junit`: one suite per file, from `check --json`'s objects."""
    root = ET.Element("testsuites", name="splitbrain check")
    for fr in files:
        name = str(fr.get("file"))
        suite = ET.SubElement(root, "testsuite", name=name,
                              time=f"{float(fr.get('seconds') or 0.0):.3f}")
        if fr.get("error") is not None:
            case(suite, name, "linearizable", error=("bad input", str(fr["error"])))
            continue
        linearizable_cases(suite, name, fr)
    write(root, path)
