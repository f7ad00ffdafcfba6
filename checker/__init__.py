"""splitbrain's checker: the history model, its formats, models and the linearizability search."""

from checker.check import FileResult, check_file
from checker.history import UNOBSERVED, HistoryError, Op, Operation, pair
from checker.linearizable import CheckResult, KeyResult, check_operations
from checker.models import MODELS, make_model

__all__ = [
    "MODELS",
    "UNOBSERVED",
    "CheckResult",
    "FileResult",
    "HistoryError",
    "KeyResult",
    "Op",
    "Operation",
    "check_file",
    "check_operations",
    "make_model",
    "pair",
]
