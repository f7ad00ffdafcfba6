"""The one verdict a checker gives, and its words: the only place they are written.

results.json keeps the verdict in its historical form, `valid`: true, false or
"unknown" (docs/results.schema.json); `Verdict.of` reads that form back and
`to_json` writes it. `word` is how people are told it (terminals, JUnit, reports).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, valid: Any) -> Verdict:
        """From results.json's `valid` (true, false, "unknown"), a checker's bool, or a
        Verdict; anything else (null, a missing entry) is unknown."""
        if isinstance(valid, Verdict):
            return valid
        if valid is True:
            return cls.VALID
        if valid is False:
            return cls.INVALID
        return cls(valid) if valid in (v.value for v in cls) else cls.UNKNOWN

    def to_json(self) -> bool | str:
        return {Verdict.VALID: True, Verdict.INVALID: False}.get(self, Verdict.UNKNOWN.value)

    @property
    def word(self) -> str:
        """For people: INVALID stands out in a terminal or a CI log."""
        return "INVALID" if self is Verdict.INVALID else self.value

    @classmethod
    def combine(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """Several checkers' verdicts as one (Jepsen's compose): invalid if any is,
        else unknown if any is, else valid."""
        found = set(verdicts)
        for v in (cls.INVALID, cls.UNKNOWN):
            if v in found:
                return v
        return cls.VALID
