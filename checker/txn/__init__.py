"""The transactional checker: Elle's analysis of list-append and rw-register
histories (Kingsbury & Alvaro, VLDB 2020) on a networkx dependency graph.
See docs/txn.md."""

from checker.txn.check import DEFAULT_MODELS, TxnFileResult, check_file, check_transactions
from checker.txn.history import WORKLOADS, MicroOp, Txn, transactions
from checker.txn.models import MODELS
from checker.txn.result import Anomaly, Step, TxnResult, Verdict

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "WORKLOADS",
    "Anomaly",
    "MicroOp",
    "Step",
    "Txn",
    "TxnFileResult",
    "TxnResult",
    "Verdict",
    "check_file",
    "check_transactions",
    "transactions",
]
