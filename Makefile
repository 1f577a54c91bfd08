# Every target creates .venv and installs the project when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test dev sandbox lint docs bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/fc-balances run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --durations=15  # both cores: the suite is mostly waiting on subprocesses and sandboxes

dev: $(STAMP)
	$(BIN)/fc-balances dev

sandbox: $(STAMP)
	$(BIN)/fc-balances sandbox

lint: $(STAMP)
	$(BIN)/ruff check .

# Rewrites the README's table reference from pipelines/contract/tables.py.
docs: $(STAMP)
	$(BIN)/python -m pipelines.contract.schema readme

bench: $(STAMP)
	$(BIN)/python bench/bench_sandbox.py
	$(BIN)/python bench/bench_pipeline.py --accounts 1000 --customers 500 --latency 1 --mode live

clean:
	rm -rf $(VENV) warehouse .dagster_home .pytest_cache
