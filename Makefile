# Set-up and the two main commands. Everything runs in a project-local virtual environment (.venv).
# torch==2.13.0 is installed first: on machines with a local CPU wheel that is fast, and it satisfies the
# package's own torch range, so pip does not pull a multi-GB CUDA build. GPU users install their torch first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup test test-fast lint format demo bench mutants clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Everything, end-to-end runs included (what CI runs), with the 15 slowest tests listed. TEST_WORKERS pytest-xdist
# workers (one torch thread each) share the cores; each test module stays in one worker (module fixtures built once).
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

# The edit-test loop: everything but the end-to-end runs marked `slow` (demo training, Chromium, 2-process
# launches, the wheel build, the README's commands).
test-fast: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# ruff (configured in pyproject.toml): `make lint` checks what CI checks, `make format` rewrites.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup
	$(VENV)/bin/gemo-clap demo

bench: setup
	$(PY) training_scripts/benchmark.py

# Mutation testing (mutmut, the [dev] extra), one module at a time against the fast tests that cover it, within
# MUTANTS_BUDGET_S seconds per module (about 40 minutes for the six default modules); not part of `make test`.
# Scores and the surviving mutants: docs/performance.md, "Mutation testing".
MUTANTS_BUDGET_S ?= 400
mutants: setup
	$(PY) -m pip install -q -e '.[dev]'
	nice -n 10 $(PY) -m benchmarks.mutation --budget-s $(MUTANTS_BUDGET_S) $(if $(MUTANTS_ONLY),--only $(MUTANTS_ONLY))

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
