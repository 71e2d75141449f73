import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"


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
