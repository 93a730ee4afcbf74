# Confide: two commands on a fresh machine.
#   make run   - create .venv if missing, install, start the homeserver (SQLite in ./var)
#   make test  - create .venv with the test extras, lint, run the whole suite
#   make soak  - the two-server and end-to-end tests ten times over under two busy loops
#                (SOAK_RUNS=N to change; stops at the first failing run)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test soak lint bench bench-homeserver bench-compare conformance clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(VENV)/bin/confide serve

lint: $(TSTAMP)
	$(VENV)/bin/ruff check server protocol crypto federation client tests bench

test: $(TSTAMP) lint
	$(PY) -m pytest

SOAK_RUNS ?= 10

soak: $(TSTAMP)
	$(PY) -m tests.soak --runs $(SOAK_RUNS)

BSTAMP := $(VENV)/.installed-bench

$(BSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

bench: $(BSTAMP)
	$(PY) -m bench.crypto_ops
	$(PY) -m bench.hpke_compare
	$(PY) -m bench.homeserver

# Confide against Synapse (installed into bench/out/synapse-venv on first use), same run.
bench-homeserver: $(STAMP)
	$(PY) -m bench.homeserver

# The homeserver scenario against commit BASE and this checkout, alternating rounds, same run.
BASE ?= HEAD~1
bench-compare: $(STAMP)
	$(PY) -m bench.compare_commits $(BASE)

conformance: $(STAMP)
	$(VENV)/bin/confide conformance

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
