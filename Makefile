# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CALLCENTER := $(BIN)/callcenter
CATALOGS := $(wildcard web/translations/*/LC_MESSAGES/messages.po)

.PHONY: run test lint typecheck pytest install translations migrate seed prompts serve clean bench bench-twilio browser-deps bench-screenpop bench-qa bench-campaigns bench-instructions bench-search

run: install translations migrate seed prompts serve

test: install translations lint typecheck pytest

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

translations: install
	@if [ -n "$(CATALOGS)" ]; then $(BIN)/pybabel compile -d web/translations; fi

migrate: install
	$(CALLCENTER) migrate

seed: migrate
	$(CALLCENTER) seed-demo

# Prompt sound files for Asterisk (var/sounds); only where espeak-ng is installed, so `make run` works
# without it. Unchanged prompts are skipped.
prompts: install
	@if command -v espeak-ng >/dev/null; then $(CALLCENTER) render-prompts; \
	else echo "espeak-ng not installed: prompt sound files not rendered (apt-get install espeak-ng)"; fi

# The web secret comes from the environment only; for a local run we keep one in var/ (git-ignored).
var/secret_key:
	@mkdir -p var && umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

# SERVE_ARGS=--always-open keeps the hotline open around the clock (to try the tour at night).
serve: install var/secret_key
	CALLCENTER_WEB__SECRET_KEY="$$(cat var/secret_key)" $(CALLCENTER) serve $(SERVE_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install translations
	CALLCENTER_TEST_REPORT=var/test-report.json $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.agi

# Twilio webhooks under wrk (apt-get install wrk) against a bare Flask endpoint (bench/twilio.py).
bench-twilio: install
	$(BIN)/python -m bench.twilio

# Instructions per Twilio webhook and per written report under valgrind: immune to the machine's drift.
bench-instructions: install
	$(BIN)/python -m bench.instructions

# Screen-pop latency with 500 agents' SSE streams open on one web node (bench/screenpop.py).
bench-screenpop: install
	$(BIN)/python -m bench.screenpop

# QA sampling over 1 000 000 recorded calls on a throwaway PostgreSQL database (bench/qa.py).
bench-qa: install
	$(BIN)/python -m bench.qa

# Campaign dialler: 10 000 due tasks, 3 scheduler processes on PostgreSQL (bench/campaigns.py).
bench-campaigns: install
	$(BIN)/python -m bench.campaigns

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Call-log search on 200,000 calls: one page per kind of search, with its plan (bench/call_search.py).
bench-search: install
	$(BIN)/python -m bench.call_search
