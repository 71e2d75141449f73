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
