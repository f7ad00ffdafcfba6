"""The transactional checker: Elle's analysis of list-append and rw-register
histories (Kingsbury & Alvaro, VLDB 2020) on a networkx dependency graph.
See docs/txn.md.

Names are imported on first use (PEP 562), so that commands which never check
transactions do not pay for importing networkx.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DEFAULT_MODELS": "checker.txn.models",
    "TxnFileResult": "checker.txn.check",
    "check_file": "checker.txn.check",
    "check_transactions": "checker.txn.check",
    "WORKLOADS": "checker.txn.history",
    "MicroOp": "checker.txn.history",
    "Txn": "checker.txn.history",
    "transactions": "checker.txn.history",
    "MODELS": "checker.txn.models",
    "Anomaly": "checker.txn.result",
    "Step": "checker.txn.result",
    "TxnResult": "checker.txn.result",
    "Verdict": "checker.txn.result",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'checker.txn' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
