PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint bench demo clean

install: $(STAMP)

# Debian packages: etcd 3.4 (the conformance tests and the benchmark run it beside the
# store), mmdebstrap (builds the images' root file systems offline), gcc and
# libnetfilter-queue-dev (build the wheel of NetfilterQueue for the helper image), and
# chromium with chromium-driver (the report tests and benchmark open report.html in a
# real headless browser through Selenium; no browser can be downloaded here).
DEBS := etcd-server etcd-client mmdebstrap gcc libnetfilter-queue-dev chromium chromium-driver
$(STAMP): pyproject.toml
	dpkg -s $(DEBS) >/dev/null 2>&1 || \
		{ apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=300 $(DEBS); }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/harness_bench.py
	$(BIN)/python bench/nemesis_bench.py
	$(BIN)/python bench/checker_bench.py
	$(BIN)/python bench/storage_bench.py
	$(BIN)/python bench/store_bench.py
	$(BIN)/python bench/report_bench.py
	$(BIN)/python bench/long_run_bench.py
	$(BIN)/python bench/invalid_report_bench.py --browser
	$(BIN)/python bench/txn_bench.py

# The default fault-injection test: our store, 5 nodes in Docker, 60 s, 10 clients on a
# register; partitions, kills and composed faults aimed at the leader (specs/demo.yaml).
# Builds the node image first if needed.
demo: install
	$(BIN)/splitbrain run specs/demo.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
