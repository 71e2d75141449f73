"""A sweep folder written by an earlier release still resumes: its Tune state pickles the suite's classes by their
module paths (raytune_suite.run.tuner, .tracking, .progress, .fidelity, .kinds, .sweep, ...), so moving or renaming one
of them breaks every interrupted sweep on users' disks unless an alias keeps the old path importable.

tests/fixtures/sweeps/diabetes_2026-12-07.tar.gz: `diabetes_linear` (HyperOpt + ASHA, 8 trials of 120 epochs, made
by `raytune-suite run` of 2026-12-07) stopped by SIGTERM after one trial finished, with its SQLite store and
artifacts. Resumed here by the current code, it must end with all 8 trials and every MLflow run closed.
"""

import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile

import pytest
from mlflow import MlflowClient

from tests.conftest import REPO
from tests.integration.cli_process import CLI

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURE = REPO / "tests" / "fixtures" / "sweeps" / "diabetes_2026-12-07.tar.gz"
TRIALS = 8
MADE_IN = "/tmp/oldlayout/work"  # the folder the fixture was made in: its store names artifact folders there


def moved_store(store, folder) -> None:
    """The store's artifact locations, moved with it (they are absolute paths)."""
    with sqlite3.connect(store) as db:
        db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (MADE_IN, folder))
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (MADE_IN, folder))


def test_a_sweep_stopped_by_an_earlier_release_resumes_to_its_end(tmp_path):
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    sweep, store = tmp_path / "ray_results" / "old-layout", tmp_path / "mlflow.db"
    moved_store(store, str(tmp_path))
    uri = f"sqlite:///{store}"
    client = MlflowClient(uri)
    before = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(before) == 1 + 2 and {r.info.status for r in before} == {"FINISHED", "KILLED"}

    ray_tmp = tempfile.mkdtemp(prefix="rts-old-")  # short: Ray's socket paths must stay under 108 bytes
    try:
        proc = subprocess.run(
            [*CLI, "run", str(REPO / "experiments" / "diabetes_linear.yaml"), "--resume", str(sweep),
             "--mlflow-uri", uri],
            cwd=tmp_path, env={**os.environ, "RAY_TMPDIR": ray_tmp}, capture_output=True, text=True, timeout=420,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Tuner.restore" not in proc.stderr and "holds no Ray state" not in proc.stderr  # Tune's state was read
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and {r.info.run_id for r in before} <= {r.info.run_id for r in runs}
    assert len(children) == TRIALS and {r.info.status for r in runs} == {"FINISHED"}, proc.stdout[-3000:]
