"""results.json's verdicts as the checkers' own records: the one place the report reads
them (`from_json` of checker/linearizable.py, checker/explain.py, checker/set_full.py,
checker/txn/result.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.linearizable import CheckResult, KeyResult
from checker.set_full import SetFullResult
from checker.txn.result import TxnResult
from checker.verdict import Verdict

MAX_DRAWN = 20  # counterexamples drawn in full, earliest violation first


@dataclass
class Checked:
    """What the checkers found, as results.json holds it."""

    linearizable: CheckResult | None = None
    set_full: SetFullResult | None = None
    txn: TxnResult | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # every checker's
    # why a checker's whole verdict is unknown, where its entry says (`stats`)
    unknown_because: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, checkers: dict[str, Any]) -> Checked:
        lin, sf = checkers.get("linearizable"), checkers.get("set-full")
        txn = checkers.get("txn")
        return cls(
            linearizable=None if lin is None else CheckResult.from_json(lin),
            set_full=None if sf is None else SetFullResult.from_json(sf),
            txn=None if txn is None else TxnResult.from_json(txn),
            verdicts={name: Verdict.of(c.get("valid")) for name, c in checkers.items()},
            unknown_because={name: str(c["reason"]) for name, c in checkers.items()
                             if Verdict.of(c.get("valid")) is Verdict.UNKNOWN
                             and c.get("reason")},
        )

    def invalid_keys(self) -> list[KeyResult]:
        """Every key not linearizable, the earliest violation in time first."""
        return [] if self.linearizable is None else self.linearizable.first_violations()

    def unknown_keys(self) -> list[KeyResult]:
        lin = self.linearizable
        return [] if lin is None else [k for k in lin.keys if k.valid == "unknown"]

    def drawn(self) -> list[KeyResult]:
        """The keys whose counterexample the report draws in full: at most MAX_DRAWN,
        the earliest violations first."""
        return [k for k in self.invalid_keys() if k.counterexample is not None][:MAX_DRAWN]
