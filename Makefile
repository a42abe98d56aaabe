# The targets the README, CI and people use. Every target creates the
# virtualenv first if it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

.DEFAULT_GOAL := help
.PHONY: help install test test-unit test-integration test-acceptance lint format demo \
        sandbox worker postman validate-deploy chaos bench bench-quick clean lock lock-check fuzz

# The lock files pin every runtime (requirements.lock) and runtime + dev
# (requirements-dev.lock) dependency with hashes, for the target: Linux
# x86_64, CPython 3.11 (the Docker image, CI). docs/security.md, "Supply chain".
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
              --custom-compile-command "make lock" --quiet
# Whether this interpreter is the lock's target; elsewhere `make install` resolves
# from pyproject.toml as before (a laptop on macOS or another Python).
ON_TARGET := import platform, sys; sys.exit(0 if sys.version_info[:2] == (3, 11) and \
             sys.platform == "linux" and platform.machine() == "x86_64" else 1)

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if $(BIN)/python -c '$(ON_TARGET)'; then \
	  echo "installing the pinned, hash-checked dependencies of requirements-dev.lock"; \
	  $(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock && \
	  $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . ; \
	else \
	  echo "not Linux x86_64 + CPython 3.11 (the lock's target): resolving from pyproject.toml"; \
	  $(BIN)/python -m pip install --quiet -e '.[dev,otel]' ; \
	fi
	touch $(STAMP)

install: $(STAMP)  ## Create the virtualenv and install the project with its dev tools (from the lock on Linux/3.11)

lock: $(STAMP)  ## Re-resolve requirements.lock and requirements-dev.lock from pyproject.toml (keeps pins that still fit)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra otel $(LOCK_FLAGS) -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --extra otel -c requirements-dev.lock $(LOCK_FLAGS) -o requirements.lock

# Re-resolves both locks into a temporary copy (uv keeps the pins that still fit)
# and compares the pinned versions. Hash lines are left out of the comparison: a
# project may upload a wheel for a new platform to a release already pinned, which
# adds a hash without changing what is installed here.
PINS = grep -Ev '^[[:space:]]*(--hash|\#)'
lock-check: $(STAMP)  ## Fail if the lock files no longer match pyproject.toml (CI runs it)
	@tmp=$$(mktemp -d) && cp requirements-dev.lock requirements.lock "$$tmp"/ && \
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra otel $(LOCK_FLAGS) -o "$$tmp/requirements-dev.lock" && \
	$(BIN)/uv pip compile pyproject.toml --extra otel -c requirements-dev.lock $(LOCK_FLAGS) -o "$$tmp/requirements.lock" && \
	for lock in requirements-dev.lock requirements.lock; do \
	  $(PINS) $$lock > "$$tmp/committed" && $(PINS) "$$tmp/$$lock" > "$$tmp/resolved" && \
	  diff -u "$$tmp/committed" "$$tmp/resolved" || \
	    { echo "$$lock does not match pyproject.toml: run 'make lock' and commit it"; exit 1; }; \
	done && rm -rf "$$tmp" && echo "lock files match pyproject.toml"

# Two pytest-xdist processes by default (--dist loadfile: a module's shared stack
# stays in one process; tests isolate Redis by key prefix and take free ports).
# The stack tests await real events (a worker's start-up line, a send in the
# sandbox's hands) with deadlines stretched by the box's load
# (tests/support/waiting.py), so two processes starving each other's stacks no
# longer fail them. TEST_JOBS=0 runs in one process. Bytecode is written (and
# reused by every process a test starts) even where PYTHONDONTWRITEBYTECODE is set.
TEST_JOBS ?= 2
test: $(STAMP)  ## Run the whole suite (unit, integration, acceptance) on TEST_JOBS processes; starts Redis if none answers
	PYTHONDONTWRITEBYTECODE= $(PYTEST) -n $(TEST_JOBS) --dist loadfile tests -m "not chaos_full"

test-unit: $(STAMP)  ## Unit tests only (no network)
	$(PYTEST) tests/unit

test-integration: $(STAMP)  ## Integration tests (real Redis, sandbox over HTTP, worker processes)
	$(PYTEST) tests/integration

test-acceptance: $(STAMP)  ## The CLI as a subprocess
	$(PYTEST) tests/acceptance

# `make fuzz`: the fuzz tests of `make test` with FUZZ_SCALE times the examples and
# random seeds; the figures (inputs, answers by class, hangs) go to $(FUZZ_REPORT).
FUZZ_SCALE  ?= 10
FUZZ_REPORT ?= .fuzz-report
fuzz: $(STAMP)  ## Longer fuzzing (schemathesis on the service, hypothesis on the producers): a few minutes; prints the figures
	@mkdir -p $(FUZZ_REPORT)
	CW_FUZZ_SCALE=$(FUZZ_SCALE) CW_FUZZ_REPORT=$(FUZZ_REPORT) $(PYTEST) --timeout 1800 \
	    tests/integration/test_service_schemathesis.py tests/unit/test_producers_fuzz.py
	@$(BIN)/python -c 'import json, pathlib, sys; [print(p.stem, json.loads(p.read_text())) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))]' $(FUZZ_REPORT)

lint: $(STAMP)  ## ruff (lint + format check) and mypy (strict on connectus_worker/ and devtools/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP)  ## Run Redis (embedded if REDIS_URL is unset and none answers), the sandbox with faults, workers; send a few hundred messages
	$(BIN)/connectus demo

sandbox: $(STAMP)  ## Serve the Connectus sandbox on 127.0.0.1:8081
	$(BIN)/connectus sandbox --port 8081

worker: $(STAMP)  ## Run supervised workers with the settings in the environment
	$(BIN)/connectus worker

postman: $(STAMP)  ## Run the Connectus Postman collection against the sandbox
	$(PYTEST) tests/integration/test_postman_collection.py -v

validate-deploy: $(STAMP)  ## Validate docker-compose.yml, the Dockerfile and deploy/k8s offline
	$(PYTEST) tests/unit/test_deploy_files.py -v

chaos: $(STAMP)  ## The full chaos tests: 20,000 SMS with worker SIGKILLs and a Redis outage; 5,000 through a Sentinel failover; judged by the charge ledger
	$(PYTEST) tests/chaos -m chaos_full -s

bench: $(STAMP)  ## Run every benchmark scenario (several minutes); writes bench/results.json and docs/benchmarks.md
	$(BIN)/python -m bench

bench-quick: $(STAMP)  ## The benchmark scenarios with small counts (under a minute at moderate load)
	$(BIN)/python -m bench --quick

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
