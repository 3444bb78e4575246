# Huiliu — one entry point. `make help` lists the targets; each creates .venv when missing.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= ap-east-1
export AWS_REGION ?= ap-east-1

.PHONY: help venv demo local test lint typecheck format validate scan unit integration test-localstack localstack bench build deploy clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

venv: ## Create .venv (Python 3.12) and install Huiliu with its dev tools
	@infra/scripts/bootstrap.sh

demo: venv ## Run the local runtime, send the sample webhooks through every function, show the results
	@$(BIN)/huiliu demo

local: venv ## Run the local runtime in the foreground (HTTP :3000, AWS :4566) for your own clients
	@$(BIN)/huiliu local

test: venv lint typecheck validate scan ## Everything CI runs: lint, type check, template validation and scan, unit/function/property/integration tests
	@$(BIN)/python -m pytest -q -n 2 --dist loadfile --cov --cov-report=term:skip-covered --cov-fail-under=80

unit: venv ## Fast tests only (no local runtime)
	@$(BIN)/python -m pytest -q -m "not integration"

integration: venv ## Integration tests through the local runtime (moto server, or LocalStack when configured)
	@$(BIN)/python -m pytest -q -m integration

lint: venv ## ruff lint and format check
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: venv ## mypy over shared/ (the layer) and functions/ (config in pyproject.toml)
	@$(BIN)/mypy

format: venv ## Apply ruff fixes and formatting
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

validate: venv ## cfn-lint and sam validate --lint on template.yaml
	@$(BIN)/cfn-lint template.yaml
	@$(BIN)/cfn-lint infra/ses-forwarder.yaml
	@$(BIN)/sam validate --lint --template template.yaml --region $(AWS_REGION) >/dev/null && echo "template.yaml: sam validate --lint OK"

scan: venv ## checkov on template.yaml (own .checkov-venv); every check passes or is skipped in the template with a reason
	@infra/scripts/checkov.sh

localstack: venv ## Start LocalStack (host mode, Python 3.13 venv) in the foreground on :4566
	@infra/scripts/localstack.sh run

test-localstack: venv ## Integration tests against LocalStack (started here in host mode unless LOCALSTACK_ENDPOINT is set)
	@infra/scripts/localstack.sh test

bench: venv ## Benchmarks: cold start, ingest, identity — prints a table
	@$(BIN)/python -m benchmarks

build: venv ## sam build (Lambda python3.12, arm64)
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template template.yaml

deploy: build ## sam deploy --guided
	@$(BIN)/sam deploy --guided

clean: ## Remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .ruff_cache .hypothesis .coverage .huiliu
