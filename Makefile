# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs (re-installed when
# pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

# One BLAS thread: p is small here, threads only add contention (reference-fitter §3.12).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test lint typecheck pytest bench clean help

help:
	@echo "make demo   - run the LOSO demo (creates .venv on first use)"
	@echo "make test   - ruff + mypy + the test suite (creates .venv on first use)"
	@echo "make bench  - run the benchmarks in bench/ (BENCH_ARGS=--quick for the small sizes)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[fit]'
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[all]'
	@touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/gamstore demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check gamstore tests bench examples
	$(BIN)/ruff format --check gamstore

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy gamstore

# pytest exits 5 when it collects nothing; make treats any non-zero exit as failure.
pytest: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -ra

test: lint typecheck pytest

bench: $(VENV)/.test-installed
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
