# KSBB Platform — two commands on a fresh machine (Python 3.11+, Java 17+, Maven):
#   make run    infrastructure + every service with demo data; prints where to look
#   make test   all set-up + the whole test suite (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST_ARGS ?=

.PHONY: help setup browser-deps infra-up run stop test test-unit schemas lint

help:
	@echo "make run   - start Kafka, MongoDB-wire server and the four services with demo data"
	@echo "make test  - install everything needed and run the whole test suite"
	@echo "make stop  - stop the local Kafka and MongoDB-wire server"

setup:
	@command -v python3 >/dev/null || { echo "Python 3.11+ is required"; exit 1; }
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "Python 3.11+ is required"; exit 1; }
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv>=0.9"
	$(UV) sync --frozen --all-packages

browser-deps:
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium (needs root and Debian's package archive)"; exit 1; }; }
	@test -f tests/browser/node_modules/axe-core/axe.min.js || (cd tests/browser && npm ci --no-audit --no-fund --silent)

infra-up:  # reuse running infrastructure; otherwise start it with the on-disk database
	@deploy/local/infra status >/dev/null 2>&1 || KSBB_MONGO_BACKEND=$${KSBB_MONGO_BACKEND:-h2} deploy/local/infra up

run: setup infra-up
	$(UV) run --no-sync python deploy/local/run_platform.py

stop:
	deploy/local/infra down

schemas:
	$(UV) run --no-sync ksbb-export-schemas

lint: setup  # style, types and the layering contracts in .importlinter
	$(UV) run --no-sync ruff check libs services tests bench deploy
	$(UV) run --no-sync mypy libs/kit/src libs/contracts/src services/*/src
	$(UV) run --no-sync lint-imports

test: setup lint browser-deps  # a layering breach fails the run before any test starts
	@started=0; \
	if [ -z "$$KSBB_KAFKA_BOOTSTRAP" ] && ! deploy/local/infra status >/dev/null 2>&1; then started=1; fi; \
	deploy/local/infra up || exit 1; \
	set -a; . .ksbb/infra/infra.env; set +a; \
	$(UV) run --no-sync pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then deploy/local/infra down; fi; \
	exit $$rc

test-unit: setup
	$(UV) run --no-sync pytest -m unit $(PYTEST_ARGS)
