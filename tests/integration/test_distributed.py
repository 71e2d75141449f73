"""`tune.workers_per_trial: 2`: each trial trains with DDP over two Ray Train workers (gloo on CPU).

Two trials of two 1-CPU workers on a 3-CPU Ray (logical CPUs: a trial is 2 workers + 0.01 for the trial itself) run
one after the other: the second only starts if the first one's worker placement group was released, which on Ray
2.60 needs the dashboard (run_sweep starts it for these sweeps).
"""

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from raytune_suite.config import load_config
from raytune_suite.errors import RunFailure
from raytune_suite.run.sweep import run_sweep
from tests.conftest import write_yaml
from tests.integration.test_sweep import runs_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_ddp_trials_of_two_cpu_workers_run_in_sequence_and_report_every_epoch(
    store, mnist_yaml, tmp_path, monkeypatch
):
    import ray

    _, client, _ = store
    assert not ray.is_initialized()
    result = ddp_sweep(mnist_yaml, store, tmp_path, monkeypatch, "train.epochs=2", "tune.num_samples=2")
    _, children = runs_of(client, result.experiment_id)
    assert result.failed == 0 and len(children) == 2
    assert all(c.info.status == "FINISHED" and c.data.tags["epochs_trained"] == "2" for c in children)
    assert {c.data.tags["world_size"] for c in children} == {"2"}
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")] == [1, 2]
    first, second = sorted(children, key=lambda c: c.info.start_time)
    assert second.info.start_time >= first.info.end_time - 1000  # in sequence: the cluster holds one at a time


def test_an_interrupted_ddp_sweep_resumes_with_ddp(tmp_path):
    """The resumed sweep must train with the same trainable and resources as the new one (tuner.trainable_for):
    the trial that had not started before the interruption reports world_size 2 like the first."""
    import json
    import os
    import signal
    import subprocess

    from mlflow import MlflowClient

    from tests.conftest import EXPERIMENTS
    from tests.integration.cli_process import CLI, start_cli, wait_for_lines

    ray_tmp = tempfile.mkdtemp(prefix="rts-ray-ddpr-")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "PYTHONUNBUFFERED": "1"}
    config = str(EXPERIMENTS / "mnist_cnn.yaml")
    sets = [
        "data.dataset=digits",
        "data.subset=600",
        "train.epochs=3",
        "tune.search=random",
        "tune.scheduler=fifo",
        "tune.num_samples=2",
        "tune.workers_per_trial=2",
        "tune.resources={cpu: 1, gpu: 0}",
        "run.name=ddp",
    ]
    args = ["--num-cpus", "3", *(arg for s in sets for arg in ("--set", s))]
    try:
        driver, lines = start_cli(["run", config, *args], cwd=tmp_path, env=env)
        try:
            wait_for_lines(driver, lines, "start ", 1, timeout=240)
            sweep_dir = tmp_path / "ray_results" / "ddp"
            deadline = time.monotonic() + 240  # until the first trial has reported an epoch
            while time.monotonic() < deadline and not any(sweep_dir.glob("trial_*/result.json")):
                time.sleep(0.5)
            driver.send_signal(signal.SIGTERM)
            assert driver.wait(120) == 130, "".join(lines)[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
        resumed = subprocess.run([*CLI, "run", config, "--resume", str(sweep_dir), "--num-cpus", "3"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "mnist_cnn"]
    children = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    for trial_dir in sweep_dir.glob("trial_*"):
        results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        assert [r["world_size"] for r in results] == ["2"] * len(results), trial_dir.name


def ddp_sweep(config, store, tmp_path, monkeypatch, *sets: str):
    """A one-trial DDP sweep (two 1-CPU gloo workers on a 3-CPU local Ray) of `config`."""
    uri, _, storage = store
    ray_tmp = tempfile.mkdtemp(prefix="rts-ray-ddp-")  # short: Ray's socket paths must fit in 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    cfg = load_config(
        config,
        ["data.dataset=digits", "data.subset=600", "tune.search=random", "tune.scheduler=fifo", "tune.num_samples=1",
         "tune.workers_per_trial=2", "tune.resources={cpu: 1, gpu: 0}", *sets],
    )  # fmt: skip
    try:
        return run_sweep(cfg, tracking_uri=uri, storage=storage, num_cpus=3)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_ddp_trial_checkpoints_every_checkpoint_every_epochs_the_last_and_each_new_best(
    store, mnist_yaml, tmp_path, monkeypatch
):
    """The trainable's one epoch loop in every DDP worker: with checkpoint_every 3 over 3 epochs and an lr too small
    to change the accuracy (no batch norm, whose statistics move without the lr), rank 0 writes a checkpoint at
    epoch 1 (the first best) and 3 (the last) only; the DDP loop used to write one every epoch."""
    result = ddp_sweep(mnist_yaml, store, tmp_path, monkeypatch, "train.epochs=3", "tune.checkpoint_every=3",
                       "train.lr=1.0e-12", "model.batch_norm=false", "space={}")  # fmt: skip
    assert result.failed == 0
    (train_dir,) = Path(result.storage_path).glob("train_*")
    assert len([d for d in train_dir.glob("checkpoint_*") if d.is_dir()]) == 2


def test_a_bug_in_the_experiments_code_fails_a_ddp_trial_once_without_retries(store, tmp_path, monkeypatch):
    """Ray Train retries a failed worker group, and the sweep a failed trial (tune.max_failures: 2): both would run
    the same bug again. The worker notes the UserCodeError, the retries stop at once, and the trial fails with it."""
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("RTS_TEST_CALLS", str(calls))
    experiment = FIXTURES / "ddp_bug_experiment.py"
    yaml = write_yaml(tmp_path / "bug.yaml", f"experiment: {experiment}\ntrain: {{epochs: 2}}\n")
    with pytest.raises(RunFailure, match=r"ddp_bug_experiment.py:\d+ in forward: ValueError: boom"):
        ddp_sweep(yaml, store, tmp_path, monkeypatch, "tune.max_failures=2")
    assert len(calls.read_text().splitlines()) == 2  # one training step per worker, no retry ran the bug again
    _, client, _ = store
    (experiment,) = [e for e in client.search_experiments() if e.name == "bug"]
    (child,) = runs_of(client, experiment.experiment_id)[1]
    assert child.info.status == "FAILED"
    tags = child.data.tags
    assert "ddp_bug_experiment.py" in tags["error_where"] and "boom" in tags["error_message"], tags
    assert tags["attempts"] == "1"
