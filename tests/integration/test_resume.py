"""A driver killed outright (SIGKILL) mid-sweep, then `run --resume`: the MLflow store must read as one clean sweep."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import EXPERIMENTS
from tests.integration.cli_process import CLI, start_cli, wait_for_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 6
EPOCHS = 4
SWEEP = [
    "--num-samples", str(TRIALS), "--num-cpus", "2",
    "--set", "data.dataset=digits", "--set", "data.subset=600", "--set", f"train.epochs={EPOCHS}",
    "--set", "tune.scheduler=fifo", "--set", "tune.max_concurrent=2", "--set", "run.name=killed",
]  # fmt: skip


def start_driver(args, cwd, env):
    """The CLI in a process group of its own, so that killing the group takes its local Ray with it."""
    return start_cli(args, cwd=cwd, env=env, start_new_session=True)


@pytest.fixture
def ray_tmpdir():
    """A short private Ray temp dir: Ray's socket paths must stay under 108 bytes, pytest's tmp_path is long."""
    path = tempfile.mkdtemp(prefix="rts-kill-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_sigkilled_driver_resumes_onto_the_same_runs_without_duplicates_or_zombies(tmp_path, ray_tmpdir):
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir, "PYTHONUNBUFFERED": "1"}
    driver, lines = start_driver(["run", str(EXPERIMENTS / "mnist_cnn.yaml"), *SWEEP], tmp_path, env)
    try:
        # Mid-sweep: two trials done, others running or waiting.
        wait_for_lines(driver, lines, " finished ", 2, timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started, with no goodbye
        driver.wait(30)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "mnist_cnn"]
    before = client.search_runs([experiment.experiment_id])
    assert any(r.info.status == "RUNNING" for r in before), "the kill left no open run: not mid-sweep"

    sweep_dir = tmp_path / "ray_results" / "killed"
    resumed = subprocess.run(
        [*CLI, "run", str(EXPERIMENTS / "mnist_cnn.yaml"), "--resume", str(sweep_dir), "--num-cpus", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]

    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["resumes"] == "1"
    assert len(children) == TRIALS
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert steps == list(range(1, EPOCHS + 1)), (child.info.run_name, steps)
    best = [c for c in children if c.data.tags.get("best_trial") == "true"]
    assert len(best) == 1 and parents[0].data.tags["best_run_id"] == best[0].info.run_id
    # Runs that existed before the kill were re-attached, not duplicated.
    kept = {r.info.run_id for r in before if r.info.run_id in {c.info.run_id for c in children}}
    assert kept, "no child run from before the kill survived the resume"


def test_sigterm_ends_every_open_run_killed_and_leaves_a_resumable_sweep(tmp_path, ray_tmpdir):
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir, "PYTHONUNBUFFERED": "1"}
    args = ["run", str(EXPERIMENTS / "mnist_cnn.yaml"), "--num-samples", "2", "--num-cpus", "2",
            "--set", "data.dataset=digits", "--set", "data.subset=400", "--set", "train.epochs=300",
            "--set", "tune.scheduler=fifo", "--set", "run.name=termed"]  # fmt: skip
    driver, lines = start_driver(args, tmp_path, env)
    try:
        wait_for_lines(driver, lines, "start ", 2, timeout=300)
        time.sleep(1)
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(120) == 130, "".join(lines[-20:])
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"KILLED"}
    assert "--resume" in "".join(lines) and (tmp_path / "ray_results" / "termed" / "tuner.pkl").is_file()
