"""`raytune-suite new` end to end: the written experiment validates and runs a tiny sweep recorded in MLflow."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "raytune_suite.cli"]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_new_validate_run(tmp_path, task):
    ray_tmp = tempfile.mkdtemp(prefix="rts-")  # Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}

    def cli(*args, timeout=60):
        return subprocess.run([*CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)

    try:
        new = cli("new", "my_model", "--task", task)
        assert new.returncode == 0, new.stderr
        validate = cli("validate", "my_model.yaml")
        assert validate.returncode == 0 and validate.stderr == "", validate.stderr
        run = cli("run", "my_model.yaml", "--num-samples", "2", "--set", "train.epochs=2", "--num-cpus", "2",
                  timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "2 trials, 0 failed" in run.stdout and run.stdout.strip().splitlines()[-1].startswith("time: ")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("my_model")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    metric = "val_accuracy" if task == "classification" else "val_rmse"
    parent = next(r for r in runs if f"best_{metric}" in r.data.metrics)
    assert parent.data.tags["experiment"].endswith("my_model.py")
