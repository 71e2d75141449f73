"""A whole sweep on S3-compatible storage (moto): checkpoints in the bucket, the best model logged from there,
and `--resume s3://...` continuing an interrupted sweep on the same MLflow runs."""

import os
import shutil
import signal
import subprocess
import tempfile

import pytest
from mlflow import MlflowClient

from tests.conftest import EXPERIMENTS
from tests.integration.cli_process import CLI, start_cli, wait_for_lines
from tests.integration.s3_server import s3_server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = str(EXPERIMENTS / "diabetes_linear.yaml")


def test_a_sweep_on_s3_checkpoints_there_logs_its_best_model_and_resumes(s3_server, tmp_path):  # noqa: F811
    ray_tmp = tempfile.mkdtemp(prefix="rts-s3s-")
    env = {**os.environ, **s3_server.env, "RAY_TMPDIR": ray_tmp, "PYTHONUNBUFFERED": "1"}
    results = s3_server.uri("results")
    sweep = f"{results}/on-s3"
    args = ["--num-cpus", "2", "--storage", results, "--set", "run.name=on-s3", "--set", "tune.num_samples=2",
            "--set", "train.epochs=60", "--set", "tune.scheduler=fifo"]  # fmt: skip
    try:
        driver, lines = start_cli(["run", CONFIG, *args], cwd=tmp_path, env=env)
        try:
            wait_for_lines(driver, lines, "start ", 1, timeout=240)
            driver.send_signal(signal.SIGTERM)
            assert driver.wait(120) == 130, "".join(lines)[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
        assert f"--resume {sweep}" in "".join(lines)
        keys = s3_server.keys("results/on-s3/")
        assert "results/on-s3/mlflow_runs.json" in keys and "results/on-s3/sweep_config.yaml" in keys

        resumed = subprocess.run([*CLI, "run", CONFIG, "--resume", sweep, "--num-cpus", "2"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert any("/checkpoint_" in key for key in s3_server.keys("results/on-s3/trial_"))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "diabetes_linear"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "FINISHED" and parent.data.tags["resumes"] == "1"
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    best = client.get_run(parent.data.tags["best_run_id"])
    assert best.data.tags["model_checkpoint_epoch"] == parent.data.tags["best_epoch"]
    import mlflow
    import torch

    from raytune_suite.track.store import fluent_tracking_uri

    with fluent_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):  # the weights came down from the bucket
        model = mlflow.pytorch.load_model(f"runs:/{best.info.run_id}/model")
    assert isinstance(model, torch.nn.Module)
