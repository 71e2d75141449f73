"""Every experiment kind (kinds.KINDS) through the same checks: a new kind is tested for free."""

import math

import pytest
from mlflow import MlflowClient

from raytune_suite.check import plan
from raytune_suite.config import load_config
from raytune_suite.review.report import load_sweep, results_table
from raytune_suite.run.tuner import param_space, trainable_for
from raytune_suite.track.tracking import start_parent_run
from raytune_suite.train.kinds import KINDS, kind_of
from tests.conftest import EXPERIMENTS

# One shipped config per kind (small data: the smoke check and one timed unit take a second or two).
CONFIGS = {
    "torch": (EXPERIMENTS / "diabetes_linear.yaml", ["train.epochs=4", "tune.asha.grace_period=1"]),
    "torch-ddp": (
        EXPERIMENTS / "diabetes_linear.yaml",
        ["train.epochs=4", "tune.asha.grace_period=1", "tune.workers_per_trial=2"],
    ),
    "estimator": (EXPERIMENTS / "rt_logreg.yaml", []),
}


def config_of(name: str):
    path, overrides = CONFIGS[name]
    return load_config(path, overrides)


def test_every_kind_has_a_config_here():
    assert set(CONFIGS) == set(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_config_of_each_kind_is_dispatched_to_that_kind(name):
    assert kind_of(config_of(name)) is KINDS[name]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_gives_a_trainable_with_resources_and_the_settings_its_trials_read(name):
    cfg, kind = config_of(name), KINDS[name]
    assert callable(kind.trainable())
    resources = kind.trial_resources(cfg)
    assert set(resources) == {"cpu", "gpu"} and resources["cpu"] > 0 and resources["gpu"] >= 0
    assert trainable_for(cfg) is not None  # Tune's with_resources accepts them
    suite = param_space(cfg)["suite"]
    assert suite == kind.suite(cfg)
    assert {"experiment", "seed", "split_seed", "metric", "mode"} <= set(suite)
    assert suite["metric"] == cfg.tune.metric and suite["mode"] == cfg.tune.mode


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_smoke_checks_its_experiment_and_times_one_unit_of_work(name):
    cfg, kind = config_of(name), KINDS[name]
    kind.smoke_check(cfg)  # raises ConfigError when the experiment's code would fail every trial
    seconds, what = kind.time_unit(cfg)
    assert math.isfinite(seconds) and seconds > 0 and what
    budget = plan.budget(cfg)
    assert budget.unit == kind.plan_unit and budget.worst >= budget.expected > 0
    assert kind.max_steps(cfg) >= 1 and kind.steps_text(cfg) and kind.parallel_units(cfg) >= 1


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_tags_its_parent_run_and_the_report_shows_what_its_results_mean(name, tmp_path):
    cfg, kind = config_of(name), KINDS[name]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment(name, artifact_location=str(tmp_path / "artifacts"))
    parent = start_parent_run(client, experiment_id, cfg, f"{name}-sweep")
    run = client.get_run(parent)
    assert (run.data.tags["kind"], run.data.tags["step"]) == (kind.name, kind.step)
    assert run.data.params["tune.metric"] == cfg.tune.metric
    assert not any(f"tune.{key}" in run.data.params for key in kind.inert_tune_keys)
    child = client.create_run(experiment_id, run_name="t1", tags={"mlflow.parentRunId": parent})
    for step in range(1, kind.max_steps(cfg) + 1):
        client.log_metric(child.info.run_id, cfg.tune.metric, 0.5 + step / 10, step=step)
    sweep = load_sweep(client, parent)
    assert sweep.per_epoch is kind.per_epoch
    columns = set(results_table(sweep).columns)
    assert f"best_{cfg.tune.metric}" in columns
    # An estimator's one cross-validated score has no epochs, early stops or best epoch to show.
    assert ({"epochs", "best_epoch", "stopped_early"} <= columns) is kind.per_epoch
