# ragbus: `make run` starts everything on the embedded stack; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
LLM_STAMP := $(VENV)/.installed-llm-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-unit test-integration lint format bench bench-smoke clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: pip then takes the CPU build instead of multi-GB CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@

# The local generative models' extra, for their tests (tests/integration/test_local_llm.py): llama-cpp-python is built
# from source with the machine's C++ compiler and cmake, 7 to 26 minutes on 2 cores, once per .venv (`make run` does
# not need it).
$(LLM_STAMP): $(STAMP)
	@echo "installing the llm extra: building llama-cpp-python from source (once per .venv, 7 to 26 min on 2 cores)"
	$(PY) -m pip install --quiet -e '.[dev,llm]'
	rm -f $(VENV)/.installed-llm-*; touch $@

run: $(STAMP)
	$(VENV)/bin/ragbus up --demo

test: $(STAMP) $(LLM_STAMP)
	$(PY) -m pytest tests

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The full benchmarks (hours on 2 cores): ingest, quality/freshness/latency, ONNX, hybrid, then the doc.
bench: $(STAMP)
	$(PY) -m bench.ingest --embedders 2 --embed-threads 1
	$(PY) -m bench.ingest --out bench/results/ingest-one-embedder.json
	$(PY) -m bench.run
	$(PY) -m bench.onnx_backend
	$(PY) -m bench.hybrid
	$(PY) -m bench.report

# The same harness, tiny (30 SciFact abstracts, 5 queries): keeps it working; numbers mean nothing.
bench-smoke: $(STAMP)
	$(PY) -m bench.run --docs 30 --queries 5 --freshness-rounds 2 --bulk-docs 10 --latency-requests 4 --cached-requests 6 \
		--levels 1,4 --hot-queries 3 --out $${TMPDIR:-/tmp}/ragbus-bench-smoke.json

clean:
	rm -rf .ragbus .pytest_cache .mypy_cache .ruff_cache
