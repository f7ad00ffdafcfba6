"""Shared test settings: deterministic hypothesis, and where the shared corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Deterministic: the same examples every run; a failure prints its example
# and the `@reproduce_failure` blob that replays it.
settings.register_profile(
    "deterministic",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("deterministic")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPLITBRAIN_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"


def require_corpus() -> Path:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the shared corpus is missing at {CORPUS}; CI must have it")
        pytest.skip(f"the shared corpus is not at {CORPUS} (set SPLITBRAIN_SHARED)")
    return CORPUS
