# Two commands do all the set-up on a fresh machine:
#   make demo   builds .venv, installs optical-memory with the OCR extra, runs `optical-memory demo`
#   make test   builds .venv with every extra from the lock, then ruff, mypy, pytest; then the
#               model's tests and type check again on the oldest transformers we support
# Installs come from constraints/lock.txt (exact versions of everything, CPU torch included);
# `make lock` refreshes it, `make test-latest` tries today's releases without it (non-blocking).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
LOCK := constraints/lock.txt
OLDEST := constraints/oldest.txt
CPU_TORCH := constraints/cpu-torch.txt
OLDEST_DIR := $(CURDIR)/$(VENV)/oldest
LATEST_VENV := .venv-latest
LOCK_VENV := .venv-lock

.PHONY: demo test lint typecheck typecheck-oldest test-oldest unit bench lock test-latest clean

demo: $(VENV)/.demo-installed
	$(BIN)/optical-memory demo

test: $(VENV)/.dev-installed $(VENV)/.oldest-installed
	$(MAKE) lint typecheck typecheck-oldest
	$(BIN)/python -m pytest -ra --durations=15
	$(MAKE) test-oldest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

# mypy reads a built copy of the package: the package-dir mapping puts renderers/,
# model/ and integrations/ under optical_memory, which mypy cannot follow in place.
typecheck: $(VENV)/.dev-installed
	rm -rf .typecheck
	$(PIP) install --quiet --no-deps --no-build-isolation --target .typecheck .
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml -p optical_memory

# The oldest supported transformers sits in its own directory ahead of the lock's newest
# one on PYTHONPATH; its requirements are met by the lock (checked by `pip check` below).
typecheck-oldest: typecheck $(VENV)/.oldest-installed
	cd .typecheck && PYTHONPATH=$(OLDEST_DIR) ../$(BIN)/mypy --config-file ../pyproject.toml \
		--cache-dir ../.mypy_cache/oldest -p optical_memory

test-oldest: $(VENV)/.oldest-installed
	PYTHONPATH=$(OLDEST_DIR) $(BIN)/python -m pytest -ra -q tests/unit_tests/model

unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/unit_tests -q

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/render_speed.py > benchmarks/results/render_speed.json
	$(BIN)/python benchmarks/compression_curve.py > benchmarks/results/compression_curve.json
	$(BIN)/python benchmarks/store_throughput.py > benchmarks/results/store_throughput.json
	$(BIN)/python benchmarks/model_cpu.py > benchmarks/results/model_cpu.json

$(VENV)/.venv-created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(LOCK) pip setuptools
	touch $@

$(VENV)/.demo-installed: $(VENV)/.venv-created pyproject.toml $(LOCK)
	$(PIP) install --quiet -c $(LOCK) -e ".[ocr]"
	touch $@

$(VENV)/.dev-installed: $(VENV)/.venv-created pyproject.toml $(LOCK)
	$(PIP) install --quiet -c $(LOCK) -e ".[all,dev]"
	touch $@ $(VENV)/.demo-installed

$(VENV)/.oldest-installed: $(VENV)/.dev-installed $(OLDEST)
	rm -rf $(OLDEST_DIR)
	$(PIP) install --quiet --no-deps --target $(OLDEST_DIR) -r $(OLDEST)
	PYTHONPATH=$(OLDEST_DIR) $(PIP) check
	touch $@

# Refresh the lock: resolve the newest releases within pyproject.toml's ranges in a fresh
# venv and freeze it (CPU torch from constraints/cpu-torch.txt). Run `make test` on the result
# before committing it; widen a range in pyproject.toml only together with the lock.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip setuptools
	$(LOCK_VENV)/bin/python -m pip install --quiet -c $(CPU_TORCH) -e ".[all,dev]"
	$(LOCK_VENV)/bin/python constraints/freeze_lock.py > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV)

# Non-blocking: the suite against today's releases of every dependency, with the upper
# bounds of pyproject.toml lifted (torch stays the CPU build). A failure here is upstream
# moving, to be fixed and then locked, never a red CI.
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip setuptools
	$(LATEST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(LATEST_VENV)/bin/python constraints/freeze_lock.py --unbounded-requirements \
		> $(LATEST_VENV)/requirements.txt
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade -c $(CPU_TORCH) \
		-r $(LATEST_VENV)/requirements.txt
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable | grep -iE '^(transformers|torch|mypy|ruff|langchain-core)=='
	$(LATEST_VENV)/bin/ruff check .
	rm -rf .typecheck-latest
	$(LATEST_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation --target .typecheck-latest .
	cd .typecheck-latest && ../$(LATEST_VENV)/bin/mypy --config-file ../pyproject.toml \
		--cache-dir ../.mypy_cache/latest -p optical_memory
	$(LATEST_VENV)/bin/python -m pytest -ra -q

clean:
	rm -rf $(VENV) $(LATEST_VENV) $(LOCK_VENV) .typecheck .typecheck-latest build *.egg-info .mypy_cache \
		.pytest_cache .ruff_cache
