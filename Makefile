# The two everyday commands are `make demo` (a live run on the bundled target) and `make test`.
# Both install what they need: the virtualenv, the Docker engine (root + apt), the sandbox image.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GENERATIONS ?= 6
# The suite runs on one worker per core (at most four); a module's tests stay on one worker.
WORKERS ?= auto

.PHONY: demo test lint format docker image bench snapshot-update clean help

help:
	@echo "make demo            live run on target_repo/ (offline proposer, real Docker, default policy)"
	@echo "make test            the whole test suite (installs everything it needs first)"
	@echo "make lint            ruff + mypy"
	@echo "make bench           benchmarks (tables printed against their targets)"
	@echo "make snapshot-update regenerate the TUI's SVG snapshots"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	@touch $(STAMP)

docker:
	@scripts/ensure-docker.sh

image: $(STAMP) docker
	$(BIN)/rsi image build
	$(BIN)/rsi image build --target examples/classify

demo: image
	$(BIN)/rsi run --target target_repo --generations $(GENERATIONS) $(RUN_ARGS)

test: image
	$(BIN)/ruff check .
	CI=$${CI:-} $(BIN)/pytest -q -n $(WORKERS) --maxprocesses 4 --dist loadscope --durations 25 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: image
	$(BIN)/python bench/run_all.py

snapshot-update: $(STAMP)
	$(BIN)/pytest -q tests/review --snapshot-update

clean:
	rm -rf runs .pytest_cache .ruff_cache .mypy_cache
