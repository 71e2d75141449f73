"""The report reads a sweep back from a real MLflow store (runs written here, no Ray) and writes table, plots, HTML."""

import csv
import re
import subprocess
import sys

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from raytune_suite.config import load_config
from raytune_suite.review import report
from raytune_suite.track import store, tracking

# (lr, channels, val_accuracy per epoch); two trials stopped by ASHA at its first rung.
TRIALS = [
    (1e-3, 16, [0.50, 0.70, 0.80, 0.82]),
    (3e-3, 32, [0.60, 0.80, 0.90, 0.93]),
    (5e-4, 16, [0.30]),
    (8e-3, 48, [0.55, 0.75, 0.85, 0.88]),
    (2e-4, 32, [0.20]),
    (6e-3, 32, [0.58, 0.79, 0.89, 0.91]),
]


@pytest.fixture
def recorded_sweep(tmp_path, mnist_yaml):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    cfg = load_config(mnist_yaml, ["train.epochs=4"])
    experiment_id = store.experiment_id_for(client, "report-test", uri)
    parent = tracking.start_parent_run(client, experiment_id, cfg, "sweep-a")
    for i, (lr, channels, curve) in enumerate(TRIALS):
        run = client.create_run(
            experiment_id, run_name=f"trial{i}", tags={"mlflow.parentRunId": parent, "trial_id": f"trial{i}"}
        )
        tags = [RunTag("stopped_early", "scheduler")] if len(curve) < 4 else []
        optimizer = "nesterov" if i == 1 else "adamw"  # momentum (conditional on nesterov) is active in trial1 only
        values = {"train.lr": lr, "model.channels": channels, "train.optimizer": optimizer, "train.momentum": 0.9}
        params = [Param(k, str(v)) for k, v in values.items()]
        metrics = [Metric("val_accuracy", v, 0, step) for step, v in enumerate(curve, start=1)]
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent)
    return uri, client, parent


def test_report_ranks_trials_and_writes_csv_plots_and_a_self_contained_html(recorded_sweep, tmp_path):
    _, client, parent = recorded_sweep
    sweep = report.load_sweep(client, parent)
    assert sweep.metric == "val_accuracy" and sweep.mode == "max" and sweep.rungs == [1, 3]

    files = report.write_report(sweep, tmp_path / "out", top_k=3)
    assert {f.name for f in files} == {"results.csv", *report.PLOTS, "report.html"}
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [r["trial"] for r in rows] == ["trial1", "trial5", "trial3", "trial0", "trial2", "trial4"]
    assert rows[0]["best_val_accuracy"] == "0.93" and rows[0]["epochs"] == "4"
    assert rows[-1]["stopped_early"] == "scheduler" and rows[-1]["epochs"] == "1"
    assert {"train.lr", "model.channels", "train.optimizer"} <= set(rows[0])

    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not re.search(r'src="(?!data:)', page), "the page must not load anything from outside itself"


def test_importance_needs_enough_trials(recorded_sweep):
    _, client, parent = recorded_sweep
    sweep = report.load_sweep(client, parent)
    sweep.trials = sweep.trials[: report.MIN_TRIALS_FOR_IMPORTANCE - 1]
    assert report.importance(sweep, report.results_table(sweep)) is None


def test_asha_rungs_are_grace_times_powers_of_the_reduction_factor_below_max_t():
    assert report.rungs_below(1, 3, 10) == [1, 3, 9]
    assert report.rungs_below(2, 2, 16) == [2, 4, 8]
    assert report.rungs_below(5, 3, 5) == []


def test_report_command_prints_the_top_k_table(recorded_sweep, tmp_path):
    uri, _, parent = recorded_sweep
    proc = subprocess.run(
        [sys.executable, "-m", "raytune_suite.cli", "report", parent, "--mlflow-uri", uri, "--top-k", "2",
         "--out", str(tmp_path / "rep")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.split("\n\n")[0].splitlines()
    assert len(table) == 3 and table[1].split()[0] == "trial1" and table[2].split()[0] == "trial5"
    assert (tmp_path / "rep" / "report.html").is_file()


def test_an_inactive_conditional_parameter_is_absent_not_its_unused_default(recorded_sweep, tmp_path):
    _, client, parent = recorded_sweep
    table = report.results_table(report.load_sweep(client, parent)).set_index("trial")
    assert table.loc["trial1", "train.momentum"] == 0.9  # nesterov: momentum was tuned here
    assert table["train.momentum"].drop("trial1").isna().all()  # adamw: momentum took no part
