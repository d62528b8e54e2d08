# Segments - developer and CI entry points.
#
#   make local    start the whole stack on this machine (moto + API on http://127.0.0.1:3000)
#   make test     ruff (lint + format check), mypy, sam validate --lint, security scans, pytest
#   make test-unit  the fast tier alone (tests/unit: pure logic, no moto), in seconds
#   make build    sam build (no Docker)
#   make bench    performance figures (docs/performance.md)
#   make scan     security scans: checkov (template), bandit (code), pip-audit (pinned requirements)
#   make monitoring  regenerate template.yaml's alarms and dashboard (tools/monitoring.py)
#
# Three virtualenvs, all Python 3.13, created on first use and refreshed only when their
# requirement files change (a stamp file inside each venv records the last install):
#   .venv      the project, its tests and tools (requirements-dev.txt + `pip install -e .`)
#   .venv-sam  the SAM CLI alone (requirements-sam.txt): it pins older boto3/pydantic than the layer.
#   .venv-scan the security scanners (requirements-scan.txt): checkov pins many packages of its own.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV      := .venv
SAM_VENV  := .venv-sam
PY        := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed

PIP := -m pip install --disable-pip-version-check --no-input --quiet

# How to run Python 3.13 when a venv has to be created: python3.13 if it runs (a pyenv shim
# may exist without working), else pyenv's 3.13.0. Evaluated only when a venv is (re)created.
IS_313 := -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'
PYTHON313 ?= $(shell \
	if python3.13 $(IS_313) >/dev/null 2>&1; then echo python3.13; \
	elif PYENV_VERSION=3.13.0 python3 $(IS_313) >/dev/null 2>&1; then echo 'env PYENV_VERSION=3.13.0 python3'; \
	fi)

# SAM runs from its own venv, with the project venv first on PATH so that `python3.13` (used by
# the python3.13 build workflow) resolves without a system-wide 3.13. Nothing here talks to AWS.
SAM_ENV = PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/$(SAM_VENV)/bin:$$PATH" \
	AWS_DEFAULT_REGION="$${AWS_DEFAULT_REGION:-us-east-1}" \
	SAM_CLI_TELEMETRY=0
SAM = $(SAM_ENV) $(CURDIR)/$(SAM_VENV)/bin/sam

# pytest-xdist: two workers on the two-core machines; `make test PYTEST_ARGS=` runs serially.
PYTEST_ARGS ?= -n 2

.PHONY: help venv sam-venv scan-venv local test test-unit lint scan monitoring build bench openapi clean distclean

help:
	@echo "make local      start moto + the API on http://127.0.0.1:3000"
	@echo "make test       ruff (lint + format check), mypy, sam validate --lint, scans, pytest"
	@echo "make test-unit  the fast tier alone: tests/unit, no moto, in seconds"
	@echo "make lint       ruff (lint + format check) + mypy"
	@echo "make build      sam build (arm64 layer, no Docker)"
	@echo "make bench      cold-import and DynamoDB-call benchmarks (docs/performance.md)"
	@echo "make openapi    regenerate docs/openapi.json"
	@echo "make scan       checkov, bandit, pip-audit (tools/scan.py)"
	@echo "make monitoring regenerate template.yaml's alarms and dashboard"
	@echo "make venv | sam-venv | scan-venv | clean | distclean"

# ---------------------------------------------------------------- virtualenvs
# $(1) = venv directory. Recreates it when missing or not Python 3.13.
define ensure_venv
	@if [ ! -x $(1)/bin/python ] || ! $(1)/bin/python $(IS_313) 2>/dev/null; then \
		py="$(PYTHON313)"; \
		if [ -z "$$py" ]; then echo "error: Python 3.13 not found (need python3.13 on PATH or pyenv 3.13.0)" >&2; exit 1; fi; \
		echo "creating $(1) with $$py"; \
		rm -rf $(1); \
		$$py -m venv $(1); \
	fi
endef

venv: $(DEV_STAMP)

$(DEV_STAMP): requirements-dev.txt layers/core/requirements.txt pyproject.toml
	$(call ensure_venv,$(VENV))
	$(PY) $(PIP) -r requirements-dev.txt
	$(PY) $(PIP) -e .
	@touch $@

sam-venv: $(SAM_STAMP)

$(SAM_STAMP): requirements-sam.txt
	$(call ensure_venv,$(SAM_VENV))
	$(SAM_VENV)/bin/python $(PIP) -r requirements-sam.txt
	@touch $@

scan-venv: $(SCAN_STAMP)

$(SCAN_STAMP): requirements-scan.txt
	$(call ensure_venv,$(SCAN_VENV))
	$(SCAN_VENV)/bin/python $(PIP) -r requirements-scan.txt
	@touch $@

# ---------------------------------------------------------------- everyday targets
local: venv
	$(PY) -m tools.local_stack

test: venv sam-venv scan-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(SAM) validate --lint
	$(PY) -m tools.scan
	@rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

# One process: starting xdist workers would cost more than the whole tier.
test-unit: venv
	$(VENV)/bin/pytest -q -p no:xdist tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

build: venv sam-venv
	$(SAM) build

bench: venv sam-venv
	$(PY) -m tools.bench

openapi: venv
	$(PY) -m tools.openapi

scan: venv scan-venv
	$(PY) -m tools.scan

monitoring: venv
	$(PY) -m tools.monitoring

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache .hypothesis .local-stack build dist
	find . -path ./$(VENV) -prune -o -path ./$(SAM_VENV) -prune -o -path ./$(SCAN_VENV) -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) $(SAM_VENV) $(SCAN_VENV)
