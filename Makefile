# KSBB Platform — two commands on a fresh machine (Python 3.11+, Java 17+, Maven, Go 1.24+ for Mailpit):
#   make run    infrastructure + every service with demo data; prints where to look
#   make test   all set-up + the whole test suite (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST_ARGS ?=
OBSERVE ?=
KSBB_TOOLS_CACHE ?= $(HOME)/.cache/ksbb-tools
# kustomize from its Go module: Debian's kubernetes-client (kubectl 1.20) predates kustomize components.
KUSTOMIZE_VERSION := v5.7.1
KAFKA_TOOLS_LIB := $(KSBB_TOOLS_CACHE)/kafka-tools-4.1.1/lib

.PHONY: help setup browser-deps gateway-deps portal-deps prometheus-deps deploy-tools infra-up run stop test test-unit schemas lint

help:
	@echo "make run   - start Kafka, MongoDB-wire server, the four services with demo data and the gateway"
	@echo "make test  - install everything needed and run the whole test suite"
	@echo "make stop  - stop the local Kafka, MongoDB-wire server, Keycloak and Mailpit"
	@echo "make bench - run every benchmark on fresh infrastructure and regenerate docs/performance.md"
	@echo "make run OBSERVE=1 - also Prometheus (Debian) with the platform's alert rules on http://127.0.0.1:9190"

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

gateway-deps:  # the gateway: Debian's nginx-light (run as a project-local, non-root process) + Swagger UI from npm
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { echo "installing Debian's nginx-light for the gateway"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null) \
	  || { echo "could not install nginx-light (needs root and Debian's package archive)"; exit 1; }; }
	@test -f deploy/gateway/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	  || (cd deploy/gateway && npm ci --ignore-scripts --no-audit --no-fund --silent)

portal-deps:  # the portal's browser assets (htmx) from npm, served by the portal itself (never from a CDN)
	@test -f frontends/portal/node_modules/htmx.org/dist/htmx.min.js \
	  || (cd frontends/portal && npm ci --ignore-scripts --no-audit --no-fund --silent)

prometheus-deps:  # Debian's prometheus: promtool for the alert-rule tests, prometheus for `make run OBSERVE=1`
	@command -v promtool >/dev/null || { echo "installing Debian's prometheus (promtool)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	  || { echo "could not install prometheus (needs root and Debian's package archive)"; exit 1; }; }

deploy-tools: prometheus-deps  # deploy tests: promtool, kustomize (Go module, cached) and Kafka's CLI jars (Maven Central)
	@test -x $(KSBB_TOOLS_CACHE)/kustomize-$(KUSTOMIZE_VERSION)/kustomize || { \
	  command -v go >/dev/null || { echo "Go is needed once to build kustomize $(KUSTOMIZE_VERSION)"; exit 1; }; \
	  echo "building kustomize $(KUSTOMIZE_VERSION) into $(KSBB_TOOLS_CACHE)"; \
	  GOBIN=$(KSBB_TOOLS_CACHE)/kustomize-$(KUSTOMIZE_VERSION) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); }
	@test -f $(KAFKA_TOOLS_LIB)/kafka-tools-4.1.1.jar || { echo "fetching Kafka's CLI jars into $(KAFKA_TOOLS_LIB)"; \
	  tmp=$$(mktemp -d) && mvn -B -q -f tests/deploy/tools/kafka-tools.pom.xml dependency:copy-dependencies \
	    -DoutputDirectory=$$tmp/lib && mkdir -p $(dir $(KAFKA_TOOLS_LIB)) && rm -rf $(KAFKA_TOOLS_LIB) \
	    && mv $$tmp/lib $(KAFKA_TOOLS_LIB) && rm -rf $$tmp; }

infra-up:  # reuse running Kafka/MongoDB (else start them with the on-disk database); Keycloak and Mailpit too
	@if deploy/local/infra status kafka mongo >/dev/null 2>&1; then \
	  deploy/local/infra status >/dev/null 2>&1 || deploy/local/infra up mailpit \
	    $$( [ "$${KSBB_INFRA_KEYCLOAK:-1}" = 1 ] && echo keycloak ); \
	else KSBB_MONGO_BACKEND=$${KSBB_MONGO_BACKEND:-h2} deploy/local/infra up; fi

run: setup gateway-deps portal-deps infra-up $(if $(filter 1,$(OBSERVE)),prometheus-deps)
	@if [ "$(OBSERVE)" = 1 ]; then \
	  mkdir -p .ksbb/logs .ksbb/prometheus; \
	  prometheus --config.file=deploy/observability/local/prometheus.yml --storage.tsdb.path=.ksbb/prometheus \
	    --web.listen-address=127.0.0.1:9190 >.ksbb/logs/prometheus.log 2>&1 & pid=$$!; \
	  trap "kill $$pid 2>/dev/null" EXIT; \
	  echo "Prometheus: http://127.0.0.1:9190/alerts (rules: deploy/observability/rules, log: .ksbb/logs/prometheus.log)"; \
	fi; \
	$(UV) run --no-sync python deploy/local/run_platform.py

stop:
	deploy/local/infra down

schemas:
	$(UV) run --no-sync ksbb-export-schemas

lint: setup  # style, types and the layering contracts in .importlinter
	$(UV) run --no-sync ruff check libs services frontends tests bench deploy
	$(UV) run --no-sync mypy libs/kit/src libs/contracts/src services/*/src frontends/portal/src
	$(UV) run --no-sync lint-imports

test: setup lint browser-deps gateway-deps portal-deps deploy-tools  # a layering breach fails the run before any test starts
	@started=""; \
	if [ -z "$$KSBB_KAFKA_BOOTSTRAP" ]; then for c in kafka mongo mailpit keycloak; do \
	  deploy/local/infra status $$c >/dev/null 2>&1 || started="$$started $$c"; done; fi; \
	deploy/local/infra up || { if [ -n "$$started" ]; then deploy/local/infra down $$started; fi; exit 1; }; \
	set -a; . .ksbb/infra/infra.env; set +a; \
	$(UV) run --no-sync pytest $(PYTEST_ARGS); rc=$$?; \
	if [ -n "$$started" ]; then deploy/local/infra down $$started; fi; \
	exit $$rc

test-unit: setup
	$(UV) run --no-sync pytest -m unit $(PYTEST_ARGS)

.PHONY: bench
bench: setup  # every benchmark in bench/suite.py on its own fresh infrastructure, then docs/performance.md
	$(UV) run --no-sync python bench/run_all.py $(BENCH_ARGS)
