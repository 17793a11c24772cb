# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA ?= ../shared/data
export BRAINTUMOR_SHARED_DATA ?= $(abspath $(SHARED_DATA))

.PHONY: demo test lint typecheck unit realdata slow bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: on a CPU machine pip takes the local CPU wheel; on CUDA machines the usual build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	# .[dev] includes every extra (braintumor[all]: serve, onnx, openvino, dicom); `braintumor demo` needs none.
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/braintumor demo --out runs/demo $(if $(DATA),--data $(DATA),)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck unit

slow: $(STAMP)
	$(BIN)/pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/cache.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
