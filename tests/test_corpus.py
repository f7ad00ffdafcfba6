"""Every history in the shared corpus gets the verdict its README lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker import check_file
from tests.conftest import CORPUS, require_corpus

MODELS: dict[str, tuple[str, Any]] = {
    "knossos/cas-register": ("cas-register", 0),
    "knossos/multi-register": ("multi-register", {"x": 0, "y": 0}),
    "knossos/mutex": ("mutex", False),
    "porcupine-kv": ("kv-append", ""),
}


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")


def expected(path: Path) -> tuple[str, Any, bool]:
    rel = path.relative_to(CORPUS).as_posix()
    for prefix, (model, initial) in MODELS.items():
        if rel.startswith(prefix):
            good = "/good/" in rel or path.stem.endswith("-ok")
            return model, initial, good
    raise AssertionError(f"no expected verdict for {rel}")


def test_corpus_is_there() -> None:
    root = require_corpus()
    files = corpus_files()
    assert len(files) >= 120, f"expected the whole corpus under {root}, found {len(files)} files"


@pytest.mark.parametrize(
    "path", corpus_files(), ids=lambda p: p.relative_to(CORPUS).as_posix()
)
def test_corpus_verdict(path: Path) -> None:
    model, initial, good = expected(path)
    result = check_file(str(path), model=model, initial=initial, time_limit=120, workers=1)
    assert result.result.valid is good, (
        f"{path}: expected {'linearizable' if good else 'not linearizable'}, "
        f"got {result.result.valid}"
    )
    if not good:
        bad = [k for k in result.result.keys if k.valid is False]
        assert bad and all(k.counterexample for k in bad)
        assert all(k.counterexample.explanation for k in bad)


def test_corpus_auto_detects_porcupine_model() -> None:
    require_corpus()
    result = check_file(str(CORPUS / "porcupine-kv" / "c10-ok.txt"))
    assert result.format == "edn"
    assert result.result.model == "kv-append"
    assert result.result.valid is True
    assert len(result.result.keys) == 10
