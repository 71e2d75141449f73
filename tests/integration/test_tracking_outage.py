"""The tracking store dies mid-sweep, for real: an `mlflow server` this test started on 127.0.0.1 is killed with SIGKILL
after 2 of 10 trials, and started again on the same store (or never). The sweep must keep training, say once that
tracking is down, and leave a store with every record exactly once: every run with its true status, no duplicate
metric steps, each child's steps those its trial trained (Ray's result.json). Checked in the store itself."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import EXPERIMENTS, REPO
from tests.integration.cli_process import CLI, start_cli, wait_for_lines, wait_or_dump_stacks
from tests.integration.mlflow_server import MlflowServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = str(EXPERIMENTS / "diabetes_linear.yaml")
TRIALS, EPOCHS = 10, 9
# 10 trials of at most 9 paced epochs (0.6 s each), 2 at a time: ~60 s of training, long enough for an outage to
# begin and end while it trains (a restarted `mlflow server` answers after 10-20 s here). Case 4 fails on purpose;
# ASHA stops the slow learners after 3 epochs.
SWEEP = [
    "--num-cpus", "2",
    "--set", f"experiment={REPO / 'tests' / 'fixtures' / 'paced_experiment.py'}",
    "--set", f"train.epochs={EPOCHS}", "--set", "model.pace_s=0.6", "--set", "model.fail_case=4",
    "--set", "tune.search=grid", "--set", "tune.num_samples=1",
    "--set", f"space={{model: {{case: {{type: grid, values: {list(range(TRIALS))}}}}}}}",
    "--set", "tune.asha={grace_period: 3, reduction_factor: 3}",
]  # fmt: skip
ENDED = " epoch(s): "  # in the console line of every trial that ended by finishing or by ASHA's stop
DOWN = "does not answer"


@pytest.fixture
def env():
    """A short private Ray temp dir: Ray's socket paths must stay under 108 bytes, pytest's tmp_path is long."""
    path = tempfile.mkdtemp(prefix="rts-out-")
    yield {**os.environ, "RAY_TMPDIR": path, "PYTHONUNBUFFERED": "1"}
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    server = MlflowServer(root)
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def sweep_with_store_killed(server: MlflowServer, tmp_path: Path, env: dict, name: str):
    """A sweep whose store is killed (SIGKILL) once 2 of its trials ended: yields (driver, its output lines, the
    time of the kill); the driver is killed on the way out if a failed check left it running."""
    args = ["run", CONFIG, *SWEEP, "--mlflow-uri", server.uri, "--storage", str(tmp_path / "ray_results"),
            "--set", f"run.name={name}"]  # fmt: skip
    driver, lines = start_cli(args, cwd=tmp_path, env=env)
    try:
        wait_for_lines(driver, lines, ENDED, 2, timeout=300)
        server.kill()
        yield driver, lines, time.monotonic()
    finally:
        if driver.poll() is None:
            driver.kill()


def cli(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def ended_count(lines: list[str]) -> int:
    return sum(ENDED in line for line in lines)


def trial_epochs(sweep_dir: Path, trial_id: str) -> list[int]:
    """The epochs the trial reported to Tune, from Ray's own record."""
    path = sweep_dir / f"trial_{trial_id}" / "result.json"
    if not path.exists():
        return []
    return sorted({json.loads(line)["epoch"] for line in path.read_text().splitlines() if line.strip()})


def check_store(store: str, sweep_dir: Path, parent_status: str) -> dict:
    """Every record exactly once; returns the runs by status and the duplicate steps found (for the record)."""
    client = MlflowClient(store)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, max_results=1000)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == parent_status, parent.info.status
    assert len(children) == TRIALS, sorted(r.info.run_name for r in children)
    duplicates = 0
    for run in [parent, *children]:
        for key in run.data.metrics:
            steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
            duplicates += sum(n - 1 for n in steps.values())
    for child in children:
        tags, status = child.data.tags, child.info.status
        trained = trial_epochs(sweep_dir, tags["trial_id"])
        logged = [m.step for m in client.get_metric_history(child.info.run_id, "val_rmse")]
        assert sorted(logged) == trained, (tags["trial_id"], logged, trained)
        assert tags["status"] == status, (tags["trial_id"], tags["status"], status)
        if tags["trial_id"].endswith("00004"):  # the case that fails on purpose
            assert status == "FAILED" and tags["error_type"] == "RuntimeError", (status, tags)
        elif status == "FINISHED" and len(trained) < EPOCHS:
            assert tags["stopped_early"] == "scheduler", tags
    assert duplicates == 0
    return {"runs": dict(Counter(r.info.status for r in [parent, *children])), "duplicate_steps": duplicates}


def test_a_store_killed_mid_sweep_and_restarted_gets_every_record_exactly_once(server, tmp_path, env):
    with sweep_with_store_killed(server, tmp_path, env, "outage") as (driver, lines, killed):
        before = ended_count(lines)
        wait_for_lines(driver, lines, DOWN, 1, timeout=60)
        wait_for_lines(driver, lines, ENDED, before + 2, timeout=120)  # trials go on while the store is down
        during = ended_count(lines) - before
        down_s = time.monotonic() - killed
        server.start()
        back = time.monotonic() - killed
        code = wait_or_dump_stacks(driver, lines, 300)
    output = "".join(lines)
    assert code == 1, output[-3000:]  # case 4 failed, as it should
    assert output.count(DOWN) == 1 and "answers again" in output, output[-4000:]
    assert "publishing:" in output, output[-3000:]
    sweep_dir = tmp_path / "ray_results" / "outage"
    state = check_store(server.store, sweep_dir, "FINISHED")
    assert state["runs"] == {"FINISHED": TRIALS, "FAILED": 1}, state
    parent = json.loads((sweep_dir / "mlflow_runs.json").read_text())["parent_run_id"]
    assert "report.html" in [a.path for a in MlflowClient(server.uri).list_artifacts(parent)]  # published
    replayed = re.search(r"answers again after (\d+) s; (\d+) kept", output)
    after = ended_count(output.split("store answers again")[1].splitlines())  # trained on once the spool was written
    assert after >= 1, "the spool was written only at the sweep's end, not while it trained"
    print(f"\nFIGURES outage: server down {down_s:.0f} s before its restart began, healthy again {back:.0f} s after "
          f"the kill; {during}+ trials ended meanwhile; replayed: {replayed.group(0) if replayed else None}; "
          f"{after} trial(s) ended after the replay; store: {state}")  # fmt: skip
    print("".join(line for line in lines if "tracking:" in line or "sweep outage" in line))


def test_a_store_that_never_returns_leaves_a_spool_that_sync_writes_exactly_once(server, tmp_path, env):
    started = time.monotonic()
    with sweep_with_store_killed(server, tmp_path, env, "gone") as (driver, lines, killed):
        code = wait_or_dump_stacks(driver, lines, 400)
        ran_s = time.monotonic() - killed
    output = "".join(lines)
    sweep_dir = tmp_path / "ray_results" / "gone"
    assert code == 1, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: the MLflow store") and f"raytune-suite sync {sweep_dir}" in last, last
    assert str(sweep_dir / "mlflow_spool") in last, last
    assert output.count(DOWN) == 1
    assert ended_count(lines) == TRIALS - 1  # every trial ran (case 4 failed)

    server.start()
    synced = cli(tmp_path, env, "sync", str(sweep_dir))
    assert synced.returncode == 0, synced.stdout[-2000:] + synced.stderr[-3000:]
    assert "report and model published" in synced.stdout, synced.stdout
    state = check_store(server.store, sweep_dir, "FINISHED")
    assert state["runs"] == {"FINISHED": TRIALS, "FAILED": 1}, state
    again = cli(tmp_path, env, "sync", str(sweep_dir))
    assert again.returncode == 0 and " 0 kept record(s) written" in again.stdout, again.stdout + again.stderr
    assert check_store(server.store, sweep_dir, "FINISHED") == state
    print(f"\nFIGURES no return: the sweep ran {ran_s:.0f} s after the kill ({time.monotonic() - started:.0f} s "
          f"in all) and exited {code}; sync: {synced.stdout.strip()}; store: {state}")  # fmt: skip


def test_sigterm_during_an_outage_ends_within_20_s_and_the_resume_completes_the_store(server, tmp_path, env):
    with sweep_with_store_killed(server, tmp_path, env, "stopped") as (driver, lines, _):
        starts = sum("start " in line for line in lines)
        wait_for_lines(driver, lines, DOWN, 1, timeout=60)
        wait_for_lines(driver, lines, "start ", starts + 1, timeout=60)  # a trial started while the store is down
        driver.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        code = wait_or_dump_stacks(driver, lines, 60)
        exit_s = time.monotonic() - stopped
    output = "".join(lines)
    sweep_dir = tmp_path / "ray_results" / "stopped"
    assert code == 130, output[-3000:]
    assert exit_s <= 20, (exit_s, output[-3000:])
    assert f"--resume {sweep_dir}" in output and f"raytune-suite sync {sweep_dir}" in output, output[-3000:]

    server.start()
    resumed = cli(tmp_path, env, "run", CONFIG, "--resume", str(sweep_dir), "--num-cpus", "2")
    assert resumed.returncode == 1, resumed.stdout[-3000:] + resumed.stderr[-3000:]  # case 4 failed
    assert "kept in" in resumed.stdout  # the spool was written before the sweep went on
    state = check_store(server.store, sweep_dir, "FINISHED")
    assert state["runs"] == {"FINISHED": TRIALS, "FAILED": 1}, state
    print(f"\nFIGURES sigterm: exit {code} {exit_s:.1f} s after SIGTERM during the outage; after --resume: {state}")
