# Two commands do all the set-up on a fresh machine:
#   make demo   builds .venv, installs optical-memory with the OCR extra, runs `optical-memory demo`
#   make test   builds .venv with every extra (CPU torch through constraints/), then ruff, mypy, pytest
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints/cpu-torch.txt

.PHONY: demo test lint typecheck unit bench clean

demo: $(VENV)/.demo-installed
	$(BIN)/optical-memory demo

test: $(VENV)/.dev-installed
	$(MAKE) lint typecheck
	$(BIN)/python -m pytest -ra --durations=15

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

# mypy reads a built copy of the package: the package-dir mapping puts renderers/,
# model/ and integrations/ under optical_memory, which mypy cannot follow in place.
typecheck: $(VENV)/.dev-installed
	rm -rf .typecheck
	$(PIP) install --quiet --no-deps --no-build-isolation --target .typecheck .
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml -p optical_memory

unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/unit_tests -q

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/render_speed.py > benchmarks/results/render_speed.json
	$(BIN)/python benchmarks/compression_curve.py > benchmarks/results/compression_curve.json
	$(BIN)/python benchmarks/store_throughput.py > benchmarks/results/store_throughput.json
	$(BIN)/python benchmarks/model_cpu.py > benchmarks/results/model_cpu.json

$(VENV)/.venv-created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools
	touch $@

$(VENV)/.demo-installed: $(VENV)/.venv-created pyproject.toml
	$(PIP) install --quiet -e ".[ocr]"
	touch $@

$(VENV)/.dev-installed: $(VENV)/.venv-created pyproject.toml $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[all,dev]"
	touch $@ $(VENV)/.demo-installed

clean:
	rm -rf $(VENV) .typecheck build *.egg-info .mypy_cache .pytest_cache .ruff_cache
