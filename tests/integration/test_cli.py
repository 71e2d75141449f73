"""The `raytune-suite` command as a user runs it: its own Ray, its own MLflow store, exit codes."""

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.conftest import EXPERIMENTS, write_yaml

CLI = [sys.executable, "-m", "raytune_suite.cli"]


def test_validate_a_broken_config_exits_2_with_one_line_naming_the_field(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", "experiment: mnist_cnn\ntrain: {lr: 1e-3, optimiser: adam}\n")
    proc = subprocess.run([*CLI, "validate", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: train.optimiser: unknown key; valid keys: epochs, batch_size, optimizer, lr, momentum, beta1, "
        "beta2, rmsprop_alpha, weight_decay, decay_norms_and_biases, l2, schedule, decay_rate, step_size, gamma, "
        "warmup_epochs, min_lr_ratio, label_smoothing, precision, grad_accum_steps, grad_clip_norm"
    ]


def test_validate_a_good_config_exits_0():
    proc = subprocess.run([*CLI, "validate", str(EXPERIMENTS / "mnist_cnn.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: mnist_cnn")


def test_bad_input_to_run_exits_2_before_ray_or_mlflow_start(tmp_path):
    proc = subprocess.run(
        [*CLI, "run", str(EXPERIMENTS / "mnist_cnn.yaml"), "--set", "tune.num_samples=0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "tune.num_samples: Input should be greater than or equal to 1" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()


@pytest.mark.integration
def test_run_command_sweeps_and_prints_best_trial_and_mlflow_ids(tmp_path):
    proc = subprocess.run(
        [*CLI, "run", str(EXPERIMENTS / "mnist_cnn.yaml"), "--num-samples", "2", "--num-cpus", "2",
         "--set", "data.dataset=digits", "--set", "data.subset=400", "--set", "train.epochs=2"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "best trial" in out and "val_accuracy=" in out and "parent run" in out
    assert out.count("start ") == 2
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "mnist_cnn"]
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the DB, not in a cwd-relative ./mlruns
