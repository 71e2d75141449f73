"""`validate --plan --calibrate` as a process: it measures the fixed costs here (a small sweep of the experiment
through the suite on a private Ray, in a temporary folder) and splits its estimate as `run` splits its time.
How close the estimate comes is a figure, not an assertion: `python benchmarks/fixed_costs.py plan` prints it."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import EXPERIMENTS
from tests.integration.cli_process import CLI

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_calibrate_measures_the_fixed_costs_and_leaves_nothing_behind(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="rts-cal-")  # short: Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    before = set(Path(tempfile.gettempdir()).glob("rts-fixed-costs-*"))
    try:
        proc = subprocess.run(
            [*CLI, "validate", str(EXPERIMENTS / "diabetes_linear.yaml"), "--plan", "--calibrate", "--num-cpus", "2",
             "--set", "tune.num_samples=4", "--set", "train.epochs=20", "--set", "tune.asha.grace_period=5"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = proc.stdout
    fixed = re.search(
        r"fixed costs here: imports and checks ([\d.]+) s, Ray's start ([\d.]+) s, first result ([\d.]+) s, then "
        r"([\d.e-]+) s per trial and ([\d.e-]+) s per reported epoch, publishing ([\d.]+) s",
        out,
    )
    assert fixed, out
    checks, ray_up, first, per_trial, per_report, publishing = map(float, fixed.groups())
    assert min(checks, ray_up, first, publishing) > 0 and per_trial >= 0 and per_report >= 0
    estimate = re.search(r"wall time: ≈ ([\d.]+) s = start-up ([\d.]+) s \+ fit\(\) ([\d.]+) s \(work: .*\) \+ "
                         r"publishing ([\d.]+) s", out)  # fmt: skip
    assert estimate, out
    total, startup, fit, published = map(float, estimate.groups())
    assert startup == pytest.approx(checks + ray_up, abs=0.11) and fit >= first and published == publishing
    assert total == pytest.approx(startup + fit + published, rel=0.05, abs=1)
    assert "INFO" not in proc.stderr, proc.stderr  # Ray's lines about the measuring sweep are not the plan's
    assert list(tmp_path.iterdir()) == []  # no store, no results folder here
    assert set(Path(tempfile.gettempdir()).glob("rts-fixed-costs-*")) == before
