"""A sweep stopped by SIGTERM, then continued by running the resume command it printed, read back from its output.

One sweep of 6 paced trials (one at a time: `--num-cpus 1` is the flag the resume must not lose), stopped after two
trials finished, resumed with exactly the printed command. Its console must read as one sweep: the resumed
progress counts on from the trials already done and ends at the total the summary shows, each trial's line shows
its best epoch and value as the report does, and none of Ray's own lines that a command-line user cannot act on
(`Tuner.restore(...)`, colour codes in piped output, the token notice) appears. The last line splits the wall time.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile

import pytest
from mlflow import MlflowClient

from raytune_suite.review.report import load_sweep, results_table
from tests.conftest import EXPERIMENTS, REPO
from tests.integration.cli_process import CLI, start_cli, wait_for_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 6
SWEEP = [
    "--num-cpus", "1",
    "--set", f"experiment={REPO / 'tests' / 'fixtures' / 'paced_experiment.py'}",
    "--set", "train.epochs=3", "--set", "model.pace_s=0.5", "--set", "tune.scheduler=fifo",
    "--set", "tune.search=grid", "--set", "tune.num_samples=1",
    "--set", f"space={{model: {{case: {{type: grid, values: {list(range(TRIALS))}}}}}}}",
    "--set", "run.name=typed",
]  # fmt: skip
# Ray's lines the console must not show: the Python API's resume hint, a colour code, the token notice.
NOT_SHOWN = ("Tuner.restore", "\x1b[", "Token authentication is enabled")
FINISHED = re.compile(r"finished +(\w+) after (\d+) epoch\(s\): best val_rmse=([\d.]+) at epoch (\d+)")


@pytest.fixture(scope="module")
def sessions():
    """(the first session's output, the resumed session's output, the working directory)."""
    cwd = tempfile.mkdtemp(prefix="rts-resume-cmd-")
    ray_tmp = tempfile.mkdtemp(prefix="rts-rc-")  # short: Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "PYTHONUNBUFFERED": "1"}
    try:
        driver, lines = start_cli(["run", str(EXPERIMENTS / "diabetes_linear.yaml"), *SWEEP], cwd=cwd, env=env,
                                  start_new_session=True)  # fmt: skip
        try:
            wait_for_lines(driver, lines, " finished ", 2, timeout=240)
            driver.send_signal(signal.SIGTERM)
            assert driver.wait(60) == 130, "".join(lines[-20:])
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait(30)
        first = "".join(lines)
        (command,) = re.findall(r"continue it with: (.+)", first)
        program, *args = shlex.split(command)
        assert program == "raytune-suite"
        resumed = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        yield first, resumed.stdout + resumed.stderr, resumed.stdout, cwd
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
        shutil.rmtree(cwd, ignore_errors=True)


def test_the_printed_command_resumes_the_sweep_with_the_flags_it_started_with(sessions):
    first, resumed, _, _ = sessions
    assert "--resume DIR alone runs the sweep as it started" in first and "--num-cpus 1" in first
    assert "local instance: 1 CPU)" in first
    assert "note: resuming with the sweep's own --num-cpus 1" in resumed
    assert "local instance: 1 CPU)" in resumed  # not the machine's 2: the flag the sweep started with
    for text in NOT_SHOWN:
        assert text not in first and text not in resumed, text


def test_the_resumed_progress_counts_on_from_the_trials_already_done(sessions):
    first, resumed, stdout, _ = sessions
    done_before = len(FINISHED.findall(first))
    starts = re.findall(r"start +\w+ +\((\d+)/(\d+) done\)", resumed)
    assert starts and starts[0] == (str(done_before), str(TRIALS)), (done_before, starts)
    counts = re.findall(r"\[(\d+)/(\d+) done", resumed)
    assert counts[-1] == (str(TRIALS), str(TRIALS))
    assert f"sweep typed: {TRIALS} trials, 0 failed" in stdout


def test_progress_summary_and_report_show_each_trials_best_epoch_alike(sessions):
    first, resumed, stdout, cwd = sessions
    shown = {trial: (float(value), int(epoch)) for trial, _, value, epoch in FINISHED.findall(first + resumed)}
    assert len(shown) == TRIALS
    client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`raytune_suite.run.sweep` = 'typed'"
    )
    table = results_table(load_sweep(client, parent.info.run_id))
    reported = {row.trial: (row.best_val_rmse, int(row.best_epoch)) for row in table.itertuples()}
    assert {t: (float(f"{v:.4f}"), e) for t, (v, e) in reported.items()} == shown
    best = table.iloc[0]
    assert f"best trial {best.trial}: val_rmse={best.best_val_rmse:.4f} at epoch {int(best.best_epoch)}" in stdout


def test_the_last_line_splits_the_wall_time_into_start_up_fit_and_publishing(sessions):
    _, _, stdout, _ = sessions
    last = stdout.strip().splitlines()[-1]
    found = re.fullmatch(
        r"time: ([\d.]+) s = start-up ([\d.]+) s \(imports and checks ([\d.]+) s, Ray and MLflow ([\d.]+) s\) "
        r"\+ fit\(\) ([\d.]+) s \(first trial at ([\d.]+) s\) \+ publishing ([\d.]+) s",
        last,
    )
    assert found, last
    total, startup, checks, ray_up, fit, _, publishing = map(float, found.groups())
    assert startup + fit + publishing == pytest.approx(total, abs=0.15)
    assert checks + ray_up <= startup + 0.1 and min(checks, ray_up, fit, publishing) > 0
