# Every target creates .venv and installs the project when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test dev sandbox lint docs bench bytecode clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The project's modules compiled ahead, as a wheel install does: an editable install leaves them to be compiled by
# every process that imports them when PYTHONDONTWRITEBYTECODE is set (0.25-0.3 s of each command's start-up).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q pipelines assets stripe_sandbox sql

run: bytecode
	$(BIN)/fc-balances run

test: bytecode
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --durations=15  # both cores: the suite is mostly waiting on subprocesses and sandboxes

dev: bytecode
	$(BIN)/fc-balances dev

sandbox: bytecode
	$(BIN)/fc-balances sandbox

lint: $(STAMP)
	$(BIN)/ruff check .

# Rewrites the README's table reference from pipelines/contract/tables.py.
docs: $(STAMP)
	$(BIN)/python -m pipelines.contract.schema readme

bench: bytecode
	$(BIN)/python bench/bench_sandbox.py
	$(BIN)/python bench/bench_pipeline.py --accounts 1000 --customers 500 --latency 1 --mode live

clean:
	rm -rf $(VENV) warehouse .dagster_home .pytest_cache
