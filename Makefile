# Every target creates .venv and installs the project into it when missing, so a newcomer's first command works.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS := $(VENV)/tools
TOOLS_STAMP := $(TOOLS)/.installed
LOCK := requirements/image.txt
# pytest-xdist workers of make test, on two cores: a third keeps the CPUs busy while another waits on a stack;
# the tests that share PostgreSQL or ports stay on one (tests/conftest.py).
TEST_WORKERS ?= 3

.PHONY: help install tools test check mutants lint lock typecheck render check-render validate docs serve bench profile stack stack-down clean

# Colours only on a terminal (and never with NO_COLOR set): a pipe or a file gets plain text.
help: ## Show this help
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / \
		{printf "  %s%-13s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

# uv installs (seconds where pip took most of a minute); pip only installs uv. Bytecode is compiled at install, as pip
# does: where PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile every module it imports.
$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then echo "install: creating the virtual environment $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); fi
	@echo "install: installing pip and uv into $(VENV)"
	@$(PY) -m pip install --quiet --upgrade pip uv
	@echo "install: installing the project and its dev tools into $(VENV) (uv pip install -e '.[dev]')"
	@$(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]'
	@touch $(STAMP)
	@echo "install: done; make help lists the targets"

install: $(STAMP) ## Create .venv and install the project with its dev tools

$(TOOLS_STAMP): pyproject.toml | $(STAMP)
	@if [ ! -x $(TOOLS)/bin/python ]; then echo "tools: creating the virtual environment $(TOOLS) with $(PYTHON)"; \
		$(PYTHON) -m venv $(TOOLS); fi
	@echo "tools: installing pyproject.toml's dependency group tools (checkov, pip-tools) into $(TOOLS)"
	@$(PY) -m uv pip install --quiet --compile-bytecode --python $(TOOLS)/bin/python --group tools
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP) ## Create .venv/tools: checkov and pip-tools, apart from the project's dev tools

test: lint ## Lint, drift check of rendered/, then pytest on three workers (needs PostgreSQL, promtool, Prometheus)
	$(PY) -m generators --check
	@# the project's modules compiled once (hidden folders, .venv among them, left out): with PYTHONDONTWRITEBYTECODE set
	@# (CI images do), each of the suite's hundreds of Python processes would compile what it imports again
	@$(PY) -m compileall -q -j 0 -x '/\.' . >/dev/null
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=30 $(PYTEST_ARGS)

# The inner loop: what needs no PostgreSQL, no Prometheus tool and no server process (markers in pyproject.toml).
CHECK_TESTS := not postgres and not promtool and not e2e and not fault and not server

check: lint ## Lint, types and the tests that start no server and need no PostgreSQL or promtool (about a minute)
	$(PY) -m pytest -m "$(CHECK_TESTS)" $(PYTEST_ARGS)

mutants: $(STAMP) ## Every single mutation of the rendered rules against the promtool tests (make test runs a sample)
	$(PY) -m tests.promtool.mutants $(MUTANTS_ARGS)

lint: $(STAMP) $(TOOLS_STAMP) ## ruff, mypy --strict, checkov on rendered/kubernetes/ and the Dockerfile (.checkov.yaml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(TOOLS)/bin/checkov -d rendered/kubernetes --framework kubernetes
	$(TOOLS)/bin/checkov -f Dockerfile --framework dockerfile

# Hashes of every file of each pinned version (all platforms); LOCK_ARGS=--upgrade moves every pin to the newest.
lock: $(TOOLS_STAMP) ## Regenerate requirements/image.txt, the image's pinned and hashed dependencies, from pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--build-deps-for=wheel --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) $(LOCK_ARGS) pyproject.toml

render: $(STAMP) ## Regenerate rendered/ from slos/specs
	$(PY) -m generators

check-render: $(STAMP) ## Fail when rendered/ differs from what the specs generate
	$(PY) -m generators --check

validate: $(STAMP) ## Check the specs (every problem of every file) without writing anything
	$(PY) -m generators validate $(SPECS)

docs: $(STAMP) ## Regenerate the tables of docs/ from the settings, the metric catalog and bench/results/
	$(PY) -m docsgen

serve: $(STAMP) ## Run the monitoring service on HOST:PORT (default 127.0.0.1:8000; DuckDB unless FEATURESTORE_PG_DSN)
	$(PY) -m service $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

bench: $(STAMP) ## Per-symbol vs global lock (think 100 ms and no think), direct vs PgBouncer, side by side (BENCH_ARGS)
	$(PY) -m bench $(BENCH_ARGS)

profile: $(STAMP) ## Flame graph (SVG, under .profile/) of a publish loop on PostgreSQL, with its top functions
	$(PY) -m bench.profile $(PROFILE_ARGS)

stack: $(STAMP) ## Service + real Prometheus + Alertmanager on loopback; Ctrl-C stops all
	$(PY) -m devstack up

stack-down: $(STAMP) ## Stop whatever `make stack` left running
	$(PY) -m devstack down

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .stack .profile
