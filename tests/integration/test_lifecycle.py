"""Every run ends with its true status, whatever stops the driver and whenever: SIGTERM in each phase of a sweep
(start-up, fit, publishing), and sweeps started at once on one new store. Checked in the MLflow store itself."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from mlflow import MlflowClient

from raytune_suite.run import reaper
from tests.conftest import EXPERIMENTS, REPO
from tests.integration.cli_process import CLI, start_cli, wait_for_lines, wait_or_dump_stacks

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = str(EXPERIMENTS / "diabetes_linear.yaml")
TINY = ["--num-samples", "2", "--num-cpus", "2", "--set", "train.epochs=3", "--set", "tune.scheduler=fifo"]


@pytest.fixture
def env():
    """A short private Ray temp dir: Ray's socket paths must stay under 108 bytes, pytest's tmp_path is long."""
    path = tempfile.mkdtemp(prefix="rts-life-")
    yield {**os.environ, "RAY_TMPDIR": path, "PYTHONUNBUFFERED": "1"}
    shutil.rmtree(path, ignore_errors=True)


def runs_in(store: str) -> list:
    client = MlflowClient(store)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000) if ids else []


@pytest.mark.parametrize(
    ("phase", "marker", "count"),
    [
        ("start-up", "starting Ray", 1),  # the parent run exists, ray.init is under way
        ("fit", "start ", 2),  # trials are training
        ("publishing", "publishing:", 1),  # every trial ended; report and model being logged
    ],
)
def test_sigterm_in_each_phase_ends_every_run_killed_and_prints_the_resume_command(tmp_path, env, phase, marker, count):
    driver, lines = start_cli(["run", CONFIG, *TINY, "--set", "run.name=stopped"], cwd=tmp_path, env=env)
    try:
        wait_for_lines(driver, lines, marker, count, timeout=240)
        driver.send_signal(signal.SIGTERM)
        code = wait_or_dump_stacks(driver, lines, 150)  # a stop during ray.init is held until Ray is up
    finally:
        if driver.poll() is None:
            driver.kill()
    output = "".join(lines)
    assert code == 130, output[-3000:]
    assert f"continue it with: raytune-suite run {CONFIG} --resume {tmp_path / 'ray_results' / 'stopped'}" in output
    runs = runs_in(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert runs, "no run was created"
    assert {r.info.status for r in runs} <= {"KILLED", "FINISHED"}, [(r.info.run_name, r.info.status) for r in runs]
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED"

    if phase == "start-up":  # no Ray state was saved: --resume starts the sweep on the same parent run
        resumed = subprocess.run(
            [*CLI, "run", CONFIG, "--resume", str(tmp_path / "ray_results" / "stopped"), "--num-cpus", "2"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=480,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "holds no Ray state" in resumed.stderr
        runs = runs_in(f"sqlite:///{tmp_path / 'mlflow.db'}")
        (again,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)


STOP_AFTER_RAY_IS_DOWN = """
import os, signal, sys, time
import ray
from raytune_suite.run.sweep import connect_ray
connect_ray(None, num_cpus=1)
signal.signal(signal.SIGTERM, lambda *_: print("stop handled", flush=True))
ray.shutdown()  # a sweep shuts Ray down while it publishes: a stop may come after
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(1)
"""


def test_a_stop_after_ray_has_shut_down_still_reaches_the_drivers_handler(env):
    # Ray's failure signal handler, once uninstalled by ray.shutdown(), left SIGTERM at its default: killed outright
    done = subprocess.run([sys.executable, "-c", STOP_AFTER_RAY_IS_DOWN], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and "stop handled" in done.stdout, (done.returncode, done.stderr[-2000:])


def test_four_sweeps_started_at_once_on_a_new_store_all_complete(tmp_path, env):
    sweeps = [
        subprocess.Popen(
            [
                *CLI,
                "run",
                CONFIG,
                "--num-samples",
                "2",
                "--num-cpus",
                "1",
                "--set",
                "train.epochs=1",
                "--set",
                "tune.scheduler=fifo",
                "--set",
                f"run.name=s{i}",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in sweeps]
    for p, out in zip(sweeps, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    runs = runs_in(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_name for r in parents) == ["s0", "s1", "s2", "s3"]
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in runs)


def test_no_process_of_a_driver_killed_outright_outlives_it(tmp_path, env):
    # Measured before reaper.py: Ray's dashboard and runtime-env agents were still alive 60 s after the SIGKILL.
    paced = ["--set", f"experiment={REPO / 'tests' / 'fixtures' / 'paced_experiment.py'}", "--set", "model.pace_s=0.5",
             "--set", "train.epochs=60"]  # fmt: skip
    driver, lines = start_cli(["run", CONFIG, *TINY, *paced, "--set", "run.name=killed"], cwd=tmp_path, env=env)
    try:
        wait_for_lines(driver, lines, "start ", 2, timeout=240)
        time.sleep(reaper.SNAPSHOT_S + 1)  # trials are training
        started = reaper.descendants(driver.pid)
        assert len(started) >= 5, started  # GCS, raylet, agents, trial workers, the watcher
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 15
    while reaper.alive(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = reaper.alive(started)
    for pid in left:  # what this test started, so that a failure leaves nothing behind
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of the driver's {len(started)} processes alive 15 s after its SIGKILL"
