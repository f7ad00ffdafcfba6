"""report.html: one self-contained page per run (docs/reports.md)."""

from harness.recorder import read_history
from harness.report.build import REPORT, build_report

__all__ = ["REPORT", "build_report", "read_history"]
