PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	command -v etcd >/dev/null && command -v etcdctl >/dev/null || \
		{ apt-get update -q && apt-get install -y -q etcd-server etcd-client; }
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
	$(BIN)/python bench/storage_bench.py
	$(BIN)/python bench/store_bench.py

# Until the harness (cluster + nemesis) lands, the demo checks two reference
# histories: one linearizable, one not, with its counterexample.
CORPUS ?= ../shared/corpus
demo: install
	@echo "The fault-injection demo arrives with the harness; meanwhile, the checker:"
	$(BIN)/splitbrain check $(CORPUS)/porcupine-kv/c50-ok.txt
	$(BIN)/splitbrain check --model cas-register --init 0 \
		$(CORPUS)/knossos/cas-register/bad/rethink-fail-minimal.edn || test $$? -eq 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
