# datahub — every target bootstraps its own virtual environment from the pinned lock file.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9
export DATAHUB_HOME ?= $(CURDIR)/.datahub

.PHONY: install demo test test-fast check lint typecheck airflow bench lock sample clean

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## demo: the main job over the committed sample feeds
demo: $(STAMP)
	$(BIN)/datahub demo

## test: the whole suite, slow tests included (as CI runs it)
test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q

## test-fast: everything but the tests marked slow
test-fast: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -m "not slow"

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests dags benchmarks
	$(BIN)/ruff format --check src tests dags benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

## airflow: airflow standalone with this project's DAGs (examples off)
airflow: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/datahub airflow-standalone

## bench: scale benchmarks (not part of make test)
bench: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/run.py $(BENCH_ARGS)

## sample: regenerate the committed sample feeds (deterministic)
sample: $(STAMP)
	rm -rf sample_sources/police sample_sources/government sample_sources/social_security sample_sources/community sample_sources/_truth
	$(BIN)/datahub generate --out sample_sources --persons 3000 --seed 20260601

## lock: re-resolve pinned versions (needs the network)
lock:
	$(PY) -m pip install -q uv==$(UV_VERSION)
	$(PY) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .datahub .pytest_cache .mypy_cache .ruff_cache
