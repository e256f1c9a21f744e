# Tally: every target installs what it needs (uv, the locked Python environment, the pinned Node tools).
# Set-up on a fresh machine is two commands: `make demo` and `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# uv on PATH if present; otherwise the copy that scripts/ensure-uv.sh installs with pip.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --locked --no-progress
NODE_BIN := tools/node/node_modules/.bin
BASE ?= HEAD~1
STAMPS := .make

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# ---- installation ---------------------------------------------------------------------------------------------
$(STAMPS)/uv:
	@bash scripts/ensure-uv.sh
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: $(STAMPS)/uv pyproject.toml uv.lock
	$(UV) sync --locked --no-progress
	@touch $@

$(STAMPS)/node: tools/node/package.json tools/node/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the spec tools: install Node.js 20+ (apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix tools/node --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

# PostgreSQL's server binaries, for the server tests on the second backend (they start their own cluster).
.PHONY: postgres
postgres: ## Install PostgreSQL's server (apt-get) unless initdb is on PATH or in /usr/lib/postgresql/*/bin.
	@command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { \
	  echo "initdb not found: installing PostgreSQL with apt-get"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Debian's Chromium, for the dashboard's browser tests (Playwright drives it by path; its own downloads do not work here).
.PHONY: chromium
chromium: ## Install Debian's chromium (apt-get) unless it is on PATH.
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  echo "chromium not found: installing it with apt-get"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

.PHONY: install
install: $(STAMPS)/venv $(STAMPS)/node ## Install uv, the locked Python environment and the pinned Node tools.

# ---- the contract ---------------------------------------------------------------------------------------------
.PHONY: generate
generate: $(STAMPS)/venv ## Regenerate generated/tally_api from openapi/tally.yaml.
	$(RUN) python scripts/generate.py

.PHONY: check-generated
check-generated: $(STAMPS)/venv ## Fail if generated/tally_api differs from what the spec generates.
	$(RUN) python scripts/generate.py --check

.PHONY: lint-spec
lint-spec: $(STAMPS)/node ## Lint the spec with Redocly CLI under redocly.yaml: zero errors, zero warnings.
	$(NODE_BIN)/redocly lint --config redocly.yaml --max-problems 200 openapi/tally.yaml 2>&1 \
		| grep -v -e '║' -e '╔' -e '╚'

.PHONY: spec-diff
spec-diff: $(STAMPS)/venv $(STAMPS)/node ## Fail if the spec breaks clients of the spec at BASE (default HEAD~1).
	$(RUN) python scripts/spec_diff.py --base "$(BASE)"

# ---- code checks and tests ------------------------------------------------------------------------------------
.PHONY: lint
lint: $(STAMPS)/venv ## ruff check and format check over src, tests and scripts.
	$(RUN) ruff check src tests scripts
	$(RUN) ruff format --check src tests scripts

.PHONY: check-sync
check-sync: $(STAMPS)/venv ## Fail if src/tally/_sync differs from what scripts/unasync.py derives from _async.
	$(RUN) python scripts/unasync.py --check

.PHONY: typecheck
typecheck: $(STAMPS)/venv ## mypy --strict over src and generated, and the typing-only check of the public API.
	$(RUN) mypy --strict src generated
	$(RUN) mypy --strict tests/typing

# Two workers on this 2-core machine (pytest-xdist): each has its own live servers, PostgreSQL cluster and
# databases (session fixtures are per worker), and gets whole files (--dist loadfile), so a module's fixtures are
# made once. PYTEST_WORKERS=0 runs in one process. The framework integrations' tests (tests/sdk/frameworks, marker
# `frameworks`: real Lightning, transformers and Keras on CPU, about a minute of CPU in all, most of it importing
# the frameworks) run here too; PYTEST_ARGS="-m 'not frameworks'" leaves them out.
PYTEST_WORKERS ?= 2

.PHONY: pytest
pytest: $(STAMPS)/venv postgres chromium ## Run the test suite only (PYTEST_WORKERS processes, default 2).
	$(RUN) pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

.PHONY: test
test: check-generated lint-spec postgres chromium ## Everything CI runs: generated and sync checks, spec lint and diff, ruff, mypy, pytest.
	$(RUN) python scripts/spec_diff.py --base "$(BASE)" --allow-missing-base
	$(MAKE) --no-print-directory check-sync lint typecheck pytest

# ---- running it ---------------------------------------------------------------------------------------------
.PHONY: demo
demo: $(STAMPS)/venv ## The main job: against TALLY_BASE_URL if set, else an embedded local server.
	$(RUN) python -m tally.demo

.PHONY: bench
bench: $(STAMPS)/venv postgres ## Measure the SDK against raw httpx on the same server, in one run.
	$(RUN) python scripts/bench.py

.PHONY: docs-images
docs-images: $(STAMPS)/venv chromium ## Regenerate the README's pictures: the CLI's plot, the dashboard's screenshots.
	$(RUN) python scripts/readme_plot.py
	TALLY_DOCS_IMAGES=1 $(RUN) pytest tests/dashboard/test_screenshots.py -q -p no:randomly -k made

.PHONY: serve
serve: $(STAMPS)/venv ## Run the reference server on 127.0.0.1:8787.
	$(RUN) tally serve

.PHONY: clean
clean: ## Remove the installed environments and caches.
	rm -rf .venv tools/node/node_modules $(STAMPS) .mypy_cache .ruff_cache .pytest_cache
