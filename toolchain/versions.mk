# Versions the builds share: the top Makefile and the Makefiles `sam build` runs
# (functions/, layers/dependencies/) include this, so `make` and a plain `sam build` produce the
# same artifact.

# The Lambda runtime's Python (template.yaml: Runtime), built once into ~/.cache when the machine
# has another (toolchain/build-python.sh).
LAMBDA_PYTHON_VERSION := 3.13.5
LAMBDA_PYTHON_HOME := $(HOME)/.cache/llm-server/python-$(LAMBDA_PYTHON_VERSION)

# Swagger UI for /docs, served by the app itself (no CDN): npm's swagger-ui-dist, pinned.
SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_INTEGRITY := sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
