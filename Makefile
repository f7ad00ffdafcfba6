PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/checker_bench.py

demo:
	@echo "make demo arrives with the harness (cluster + nemesis) issue; today try:"
	@echo "  make install && .venv/bin/splitbrain check --model cas-register --init 0 \\"
	@echo "      ../shared/corpus/knossos/cas-register/bad/bad-analysis.edn"
	@exit 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
