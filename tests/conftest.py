import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
# Tiers by folder (pytest -m): what tests/integration holds starts real Ray or MLflow, what tests/gpu holds needs CUDA.
FOLDER_MARKS = {"integration": "integration", "gpu": "gpu"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in FOLDER_MARKS:
            item.add_marker(FOLDER_MARKS[parts[1]])


@pytest.fixture
def mnist_yaml() -> Path:
    return EXPERIMENTS / "mnist_cnn.yaml"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# What a sweep or an MLflow client leaves in the working directory when a test forgets its own temporary folder.
LEAKS = ("mlruns", "mlflow.db", "mlartifacts", "ray_results")


def _leak_marks(folder: Path) -> set[Path]:
    marks = {folder / name for name in LEAKS if (folder / name).exists()}
    return marks | set((folder / "mlruns").glob("*/*"))  # mlruns/<experiment>/<run>: a run's artifacts


@pytest.fixture(scope="session", autouse=True)
def tests_leave_nothing_in_the_working_directory():
    """Every test keeps its stores, artifacts and Ray results in its own temporary folder: a new ./mlruns run
    (a SQLite store's default artifact root) or ./mlflow.db after the session names a test that did not."""
    folders = {Path.cwd().resolve(), REPO}
    before = {mark for folder in folders for mark in _leak_marks(folder)}
    yield
    leaked = sorted(str(m) for folder in folders for m in _leak_marks(folder) - before)
    assert not leaked, f"tests wrote into the working directory: {leaked[:5]}"


@pytest.fixture(autouse=True)
def no_stop_deadline_outlives_its_test():
    """A test that simulates a stop request arms the sweep's stop deadline (`sweep.StopDeadline`), which ends the
    process 18 s later: outside `run_sweep` nothing disarms it, so each test's is disarmed here."""
    yield
    import sys

    sweep = sys.modules.get("raytune_suite.run.sweep")
    if sweep is not None:
        sweep._deadline.disarm()
