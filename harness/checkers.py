"""The checkers a run composes by name (Jepsen's `checker/compose`), behind one protocol.

A workload names its checkers (`Workload.checkers`); `compose` turns the names into
`Checker`s, and each judges the run's stored history into its entry in results.json's
`checkers` (with `valid`, read back as a `Verdict`). The same object says how its entry
is told: the detail `splitbrain run` prints after its verdict, its JUnit test cases,
and its lines in the CI summary. Nothing else switches on a checker's name.

- `linearizable`: each key's operations against the workload's model (CheckResult);
- `set-full`: sets, their lost, stale and unexpected elements (SetFullResult);
- `txn`: transactions, Elle's analysis for the workload's consistency models (TxnResult);
- `stats`: that any client operation succeeded (else unknown: the others say little).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from checker.junit import _show, case, linearizable_cases
from checker.stats import Stats
from checker.verdict import Verdict
from harness.spec import Spec
from harness.workload import Workload

MAX_COUNTEREXAMPLES: Final = 20  # full in results.json, earliest violation first


@dataclass(frozen=True)
class CheckJob:
    """What every checker is given: the run's spec and workload, its stored history, and
    the statistics computed from it."""

    spec: Spec
    workload: Workload
    history: Path
    stats: Stats


@dataclass(frozen=True)
class Told:
    """A checker's entry told for the CI summary: what follows its verdict, and one
    annotation per finding."""

    detail: str = ""
    annotations: tuple[str, ...] = ()


class Checker(Protocol):
    name: str

    def check(self, job: CheckJob) -> dict[str, Any]:
        """Its entry in results.json's `checkers`, with `valid`."""
        ...

    def detail(self, entry: dict[str, Any]) -> str:
        """What `splitbrain run` prints after the verdict (may be several lines)."""
        ...

    def junit(self, suite: ET.Element, classname: str, entry: dict[str, Any]) -> None:
        """Its test cases: one for the checker, more for each finding worth naming."""
        ...

    def told(self, entry: dict[str, Any]) -> Told: ...


def verdict_of(entry: dict[str, Any]) -> Verdict:
    return Verdict.of(entry.get("valid"))


def _one_case(suite: ET.Element, classname: str, name: str, entry: dict[str, Any],
              failure: str, text: str = "", seconds: float = 0.0) -> None:
    verdict = verdict_of(entry)
    if verdict is Verdict.INVALID:
        case(suite, classname, name, seconds, failure=(failure, text))
    elif verdict is Verdict.UNKNOWN:
        case(suite, classname, name, seconds, skipped=str(entry.get("incomplete")
                                                          or entry.get("reason") or "unknown"))
    else:
        case(suite, classname, name, seconds)


class Linearizable:
    name = "linearizable"

    def check(self, job: CheckJob) -> dict[str, Any]:
        from checker.check import check_file

        if job.workload.model is None:
            raise ValueError(f"the {job.workload.name} workload has no model to check "
                             "linearizability against")
        checked = check_file(
            str(job.history), job.workload.model, None, "jsonl",
            time_limit=job.spec.checker.time_limit,
            memory_limit=int(job.spec.checker.memory_limit_mb * 2**20),
            max_explained=MAX_COUNTEREXAMPLES,
        )  # fmt: skip
        return checked.result.to_json(max_counterexamples=MAX_COUNTEREXAMPLES)

    def detail(self, entry: dict[str, Any]) -> str:
        from checker.linearizable import CheckResult

        result = CheckResult.from_json(entry)
        bad = result.first_violations()
        unknown = entry.get("unknown_keys") or []
        text = f" ({entry.get('key_count', 0)} keys"
        if bad:
            text += f"; {len(bad)} not linearizable, the earliest first: "
            text += ", ".join(str(k.key) for k in bad[:5])
        if unknown:
            text += f"; unknown: {', '.join(map(str, unknown[:5]))}"
        text += ")"
        brief = bad[0].brief() if bad else None
        if brief is not None:
            text += f"\n    first violation: {brief.explanation}"
        return text

    def junit(self, suite: ET.Element, classname: str, entry: dict[str, Any]) -> None:
        linearizable_cases(suite, classname, entry)

    def told(self, entry: dict[str, Any]) -> Told:
        bad = entry.get("invalid_keys") or []
        detail = f" ({entry.get('key_count', 0)} keys"
        detail += f"; not linearizable: {', '.join(map(_show, bad[:10]))}" if bad else ""
        return Told(detail + ")", tuple(k["counterexample"]["explanation"]
                                        for k in entry.get("keys", [])
                                        if k.get("counterexample")))


class SetFull:
    name = "set-full"

    def check(self, job: CheckJob) -> dict[str, Any]:
        from checker.set_full import check_set_full
        from harness.recorder import stream_history

        linearizable = bool(getattr(job.workload, "linearizable", True))
        return check_set_full(stream_history(job.history), linearizable).to_json()

    def detail(self, entry: dict[str, Any]) -> str:
        return (f" ({entry['attempted']} added, {entry['lost']} lost, {entry['stale']} "
                f"stale, {entry['unexpected']} unexpected)")

    def junit(self, suite: ET.Element, classname: str, entry: dict[str, Any]) -> None:
        _one_case(suite, classname, self.name, entry,
                  f"{entry.get('lost')} lost, {entry.get('stale')} stale, "
                  f"{entry.get('unexpected')} unexpected elements")
        for k in entry.get("keys", []):
            if Verdict.of(k.get("valid")) is Verdict.INVALID:
                text = "\n".join(f"{what}: {', '.join(map(_show, k[what][:200]))}"
                                 for what in ("lost", "stale", "unexpected") if k.get(what))
                case(suite, classname, f"set-full[{_show(k['key'])}]", failure=(
                    f"set {_show(k['key'])}: {len(k['lost'])} lost, {len(k['stale'])} stale, "
                    f"{len(k['unexpected'])} unexpected", text))

    def told(self, entry: dict[str, Any]) -> Told:
        found = (f"set-full: {entry['lost']} lost, {entry['stale']} stale, "
                 f"{entry['unexpected']} unexpected")
        return Told(self.detail(entry),
                    (found,) if verdict_of(entry) is Verdict.INVALID else ())


class Transactions:
    """Elle's analysis (checker/txn) for the workload's consistency models."""

    name = "txn"
    shown: Final = 3  # anomalies whose explanation `splitbrain run` prints

    def check(self, job: CheckJob) -> dict[str, Any]:
        from checker.txn.check import check_file

        checked = check_file(str(job.history), job.workload.name,  # type: ignore[arg-type]
                             job.workload.consistency_models, "jsonl",
                             time_limit=job.spec.checker.time_limit)
        return checked.result.to_json()

    @staticmethod
    def _counts(entry: dict[str, Any]) -> str:
        return ", ".join(f"{n} ×{c}" for n, c in (entry.get("anomaly_counts") or {}).items())

    def detail(self, entry: dict[str, Any]) -> str:
        models = ", ".join(entry.get("consistency_models") or [])
        text = f" ({entry.get('txns', 0)} transactions, for {models}"
        counts = self._counts(entry)
        text += f"; anomalies: {counts}" if counts else "; no anomaly"
        text += ")"
        if entry.get("not"):
            text += f"\n    not {', '.join(entry['not'])}"
            if entry.get("also_not"):
                text += f" (nor {', '.join(entry['also_not'])})"
        if entry.get("anomalies"):
            text += ("\n    strongest models still satisfied: "
                     f"{', '.join(entry.get('strongest_satisfied') or []) or 'none'}")
        if entry.get("incomplete"):
            text += f"\n    incomplete: {entry['incomplete']}"
        for a in (entry.get("anomalies") or [])[: self.shown]:
            head, *rest = a["explanation"]
            text += f"\n    {a['name']}: {head}"
            text += "".join(f"\n      {line}" for line in rest)
        more = len(entry.get("anomalies") or []) - self.shown
        if more > 0:
            text += f"\n    … {more} more explained in results.json and report.html"
        return text

    def junit(self, suite: ET.Element, classname: str, entry: dict[str, Any]) -> None:
        text = "\n\n".join("\n".join([a["name"], *a["explanation"]])
                           for a in entry.get("anomalies") or [])
        _one_case(suite, classname, self.name, entry,
                  f"anomalies {', '.join(entry.get('anomaly_types') or [])}: not "
                  f"{', '.join(entry.get('not') or entry.get('consistency_models') or [])}",
                  text, float(entry.get("seconds") or 0.0))

    def told(self, entry: dict[str, Any]) -> Told:
        counts = self._counts(entry)
        detail = f" ({entry.get('txns', 0)} transactions" + (
            f"; anomalies: {counts})" if counts else ")")
        return Told(detail, tuple(f"{a['name']}: {' '.join(a['explanation'])}"
                                  for a in entry.get("anomalies") or []
                                  if verdict_of(entry) is Verdict.INVALID))


class Availability:
    """`stats`: valid when some client operation succeeded, and, in a run with faults,
    some operation invoked after the last of them (the final heal): without the first,
    nothing the other checkers say means much; without the second, nothing of the end
    state was read, so acknowledged writes could be lost unseen. Either way the verdict
    is unknown, with its reason."""

    name = "stats"

    def check(self, job: CheckJob) -> dict[str, Any]:
        stats = job.stats
        if not any(c.get("ok") for c in stats.ops.values()):
            reason = "no client operation succeeded"
        elif stats.ok_after_nemesis == 0:
            reason = ("no client operation invoked after the final heal succeeded: the end "
                      "state was never read")
        else:
            return {"valid": Verdict.VALID.to_json()}
        return {"valid": Verdict.UNKNOWN.to_json(), "reason": reason}

    def detail(self, entry: dict[str, Any]) -> str:
        if verdict_of(entry) is Verdict.UNKNOWN and entry.get("reason"):
            return f" ({entry['reason']})"
        return ""

    def junit(self, suite: ET.Element, classname: str, entry: dict[str, Any]) -> None:
        if verdict_of(entry) is Verdict.UNKNOWN:
            case(suite, classname, self.name,
                 skipped=f"unknown: {entry.get('reason') or 'no client operation succeeded'}")
        else:
            case(suite, classname, self.name)

    def told(self, entry: dict[str, Any]) -> Told:
        return Told(self.detail(entry))


class Unnamed:
    """An entry of a checker this version does not know (results.json from another
    version): its verdict, nothing more."""

    def __init__(self, name: str) -> None:
        self.name = name

    def check(self, job: CheckJob) -> dict[str, Any]:
        raise ValueError(f"unknown checker {self.name!r}; known: {', '.join(CHECKERS)}")

    def detail(self, entry: dict[str, Any]) -> str:
        return ""

    def junit(self, suite: ET.Element, classname: str, entry: dict[str, Any]) -> None:
        _one_case(suite, classname, self.name, entry, f"{self.name}: invalid", _show(entry))

    def told(self, entry: dict[str, Any]) -> Told:
        return Told()


CHECKERS: Final[dict[str, Checker]] = {
    c.name: c for c in (Linearizable(), SetFull(), Transactions(), Availability())
}


def named(name: str) -> Checker:
    """The checker of that name; an entry of an unknown one is still told."""
    return CHECKERS.get(name) or Unnamed(name)


def compose(names: Sequence[str]) -> list[Checker]:
    unknown = [n for n in names if n not in CHECKERS]
    if unknown:
        raise ValueError(f"unknown checker {unknown[0]!r}; known: {', '.join(CHECKERS)}")
    return [CHECKERS[n] for n in names]


def run_checkers(checkers: Sequence[Checker], job: CheckJob) -> dict[str, dict[str, Any]]:
    """Each checker's entry, by name, in the order composed."""
    return {c.name: c.check(job) for c in checkers}


def combined(entries: dict[str, dict[str, Any]]) -> Verdict:
    """The run's verdict from its checkers' entries; never valid without a check."""
    if not entries:
        return Verdict.UNKNOWN
    return Verdict.combine(verdict_of(e) for e in entries.values())
