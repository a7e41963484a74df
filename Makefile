# Every target creates .venv and installs the project into it when missing, so a newcomer's first command works.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install test lint typecheck render check-render validate serve bench profile stack stack-down clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-13s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev tools

test: lint ## Lint, drift check of rendered/, then pytest (needs PostgreSQL, promtool and the Prometheus binaries)
	$(PY) -m generators --check
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

render: $(STAMP) ## Regenerate rendered/ from slos/specs
	$(PY) -m generators

check-render: $(STAMP) ## Fail when rendered/ differs from what the specs generate
	$(PY) -m generators --check

validate: $(STAMP) ## Check the specs (every problem of every file) without writing anything
	$(PY) -m generators validate $(SPECS)

serve: $(STAMP) ## Run the monitoring service on 127.0.0.1:8000 (DuckDB unless FEATURESTORE_PG_DSN is set)
	$(PY) -m service

bench: $(STAMP) ## Per-symbol vs global lock (think 100 ms and no think), direct vs PgBouncer, side by side (BENCH_ARGS)
	$(PY) -m featurestore.loadtest --compare $(BENCH_ARGS)

profile: $(STAMP) ## Flame graph (SVG, under .profile/) of a publish loop on PostgreSQL, with its top functions
	$(PY) -m bench.profile $(PROFILE_ARGS)

stack: $(STAMP) ## Service + real Prometheus + Alertmanager on loopback; Ctrl-C stops all
	$(PY) -m service.stack up

stack-down: $(STAMP) ## Stop whatever `make stack` left running
	$(PY) -m service.stack down

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .stack .profile
