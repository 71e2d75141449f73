"""Real sweeps on a real local Ray, checked from the MLflow store itself."""

import math
from pathlib import Path

import pytest
from mlflow.entities import RunStatus

from raytune_suite.config import load_config
from raytune_suite.run.sweep import run_sweep
from tests.conftest import REPO

pytestmark = pytest.mark.integration

DIGITS = ["data.dataset=digits", "train.epochs=3", "tune.seed=3"]


def runs_of(client, experiment_id):
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


@pytest.mark.smoke
def test_hyperopt_asha_sweep_records_parent_children_epochs_and_early_stops(ray_local, store, mnist_yaml):
    uri, client, storage = store
    cfg = load_config(
        mnist_yaml,
        [
            *DIGITS,
            "tune.num_samples=6",
            "tune.max_concurrent=2",
            "space.train.lr.low=1e-5",
            "tune.n_initial_points=3",
        ],
    )
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)

    parents, children = runs_of(client, result.experiment_id)
    assert len(parents) == 1 and len(children) == 6 and result.failed == 0
    parent = parents[0]
    assert parent.info.run_id == result.parent_run_id and parent.info.status == "FINISHED"
    assert {parent.data.tags[k] for k in ("searcher", "scheduler")} == {"hyperopt", "asha"}
    assert "search_space.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all(c.info.status == "FINISHED" for c in children)

    for child in children:
        trained = int(child.data.tags["epochs_trained"])
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, trained + 1))
        assert {"train_loss", "val_loss", "lr", "epoch"} <= set(child.data.metrics)
        assert "train.lr" in child.data.params

    stopped = [c for c in children if c.data.tags.get("stopped_early") == "scheduler"]
    assert stopped, "ASHA stopped no trial"
    assert all(int(c.data.tags["stopped_at_epoch"]) < 3 for c in stopped)

    best = [c for c in children if c.data.tags.get("best_trial") == "true"]
    assert len(best) == 1 and parent.data.tags["best_run_id"] == best[0].info.run_id
    best_value = max(float(c.data.tags["best_val_accuracy"]) for c in children)
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best_value, rel=1e-5)
    assert parent.data.params["best.train.lr"] == best[0].data.params["train.lr"]


def test_grid_search_with_a_conditional_parameter_runs_every_branch_once(ray_local, store, mnist_yaml, tmp_path):
    uri, client, storage = store
    cfg = load_config(
        mnist_yaml,
        [
            "data.dataset=digits", "data.subset=400", "train.epochs=1", "tune.search=grid", "tune.scheduler=fifo",
            "tune.num_samples=1",
            "space={train: {optimizer: {type: grid, values: [adamw, momentum]},"
            " momentum: {type: grid, values: [0.5, 0.9], when: {optimizer: [momentum]}}}}",
        ],
    )  # fmt: skip
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    _, children = runs_of(client, result.experiment_id)
    seen = sorted((c.data.params["train.optimizer"], c.data.params.get("train.momentum")) for c in children)
    # momentum is unset outside its branch: the adamw trial neither reads nor records one
    assert seen == [("adamw", None), ("momentum", "0.5"), ("momentum", "0.9")]


def test_a_crashing_trial_is_recorded_failed_and_the_rest_still_finish(ray_local, store, mnist_yaml):
    uri, client, storage = store
    cfg = load_config(
        mnist_yaml,
        [
            f"experiment={REPO / 'tests' / 'fixtures' / 'flaky_experiment.py'}", "data.dataset=digits",
            "data.subset=400", "train.epochs=1", "tune.search=grid", "tune.scheduler=fifo", "tune.max_failures=0",
            "tune.num_samples=1",
            "space={model: {channels: {type: grid, values: [16, 32]}}}",
        ],
    )  # fmt: skip
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    assert result.trials == 2 and result.failed == 1
    _, children = runs_of(client, result.experiment_id)
    status = {c.data.params["model.channels"]: c.info.status for c in children}
    assert status == {"16": "FAILED", "32": "FINISHED"}
    assert RunStatus.to_string(RunStatus.RUNNING) not in {
        c.info.status for c in client.search_runs([result.experiment_id])
    }


def test_a_failed_trials_run_carries_its_error_and_a_bug_in_the_experiment_is_not_retried(ray_local, store, mnist_yaml):
    uri, client, storage = store
    cfg = load_config(
        mnist_yaml,
        [
            f"experiment={REPO / 'tests' / 'fixtures' / 'flaky_experiment.py'}", "data.dataset=digits",
            "data.subset=400", "train.epochs=1", "tune.search=grid", "tune.scheduler=fifo", "tune.max_failures=1",
            "tune.num_samples=1", "space={model: {channels: {type: grid, values: [16, 32]}}}",
        ],
    )  # fmt: skip
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    _, children = runs_of(client, result.experiment_id)
    (failed,) = [c for c in children if c.info.status == "FAILED"]
    tags = failed.data.tags
    assert tags["error_type"] == "RuntimeError"
    assert tags["error_message"] == "boom: 16 channels are not allowed in this test"
    assert tags["attempts"] == "1"  # max_failures=1, but a bug in the experiment's code is not retried
    assert tags["error_where"].endswith("flaky_experiment.py:9 in build_model")
    error_txt = client.download_artifacts(failed.info.run_id, "error.txt", str(storage))
    text = Path(error_txt).read_text()
    assert "boom" in text and "Failure # 2" not in text and "\x1b[" not in text


def test_a_trial_that_diverges_after_looking_best_never_wins(ray_local, store, mnist_yaml, capsys):
    uri, client, storage = store
    cfg = load_config(
        mnist_yaml,
        [
            f"experiment={REPO / 'tests' / 'fixtures' / 'diverging_experiment.py'}", "data.dataset=digits",
            "data.subset=400", "train.epochs=3", "train.batch_size=16", "tune.search=grid", "tune.scheduler=fifo",
            "tune.num_samples=1", "space={model: {channels: {type: grid, values: [16, 32]}}}",
        ],
    )  # fmt: skip
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    parents, children = runs_of(client, result.experiment_id)
    by_channels = {c.data.params["model.channels"]: c for c in children}
    diverged, constant = by_channels["32"], by_channels["16"]

    history = client.get_metric_history(diverged.info.run_id, "val_accuracy")
    constant_best = max(m.value for m in client.get_metric_history(constant.info.run_id, "val_accuracy"))
    assert history[0].value > constant_best, "the diverging trial should look best before it diverges"
    assert math.isnan(history[-1].value)  # logged as NaN, not as the 1e30 stand-in
    assert diverged.data.tags["diverged"] == "true" and diverged.data.tags["stopped_early"] == "diverged"

    assert constant.data.tags.get("best_trial") == "true" and "best_trial" not in diverged.data.tags
    (parent,) = parents
    assert parent.data.tags["best_run_id"] == constant.info.run_id
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(constant_best)
    assert result.best_trial == constant.data.tags["trial_id"]
    out = capsys.readouterr().out
    assert f"diverged      {diverged.data.tags['trial_id']} after 2 epoch(s): val_accuracy=diverged" in out
    assert "1e+30" not in out
    # The report's table ranks the diverged trial last, whatever it reached before.
    from raytune_suite.review import report

    table = report.results_table(report.load_sweep(client, result.parent_run_id))
    assert list(table["trial"]) == [constant.data.tags["trial_id"], diverged.data.tags["trial_id"]]


def test_the_best_model_loads_as_the_experiments_module_and_scores_its_logged_best(ray_local, store, mnist_yaml):
    import mlflow
    import torch

    from raytune_suite.experiments import load_experiment
    from raytune_suite.track.store import fluent_tracking_uri

    uri, client, storage = store
    cfg = load_config(mnist_yaml, [*DIGITS, "data.subset=600", "tune.num_samples=2", "tune.scheduler=fifo"])
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    best_run = client.get_run(client.get_run(result.parent_run_id).data.tags["best_run_id"])
    with fluent_tracking_uri(uri):
        model = mlflow.pytorch.load_model(f"runs:/{best_run.info.run_id}/model")
    experiment = load_experiment(cfg.experiment)
    data = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    built = experiment.build_model(experiment.ModelConfig.model_validate(cfg.model), data.info)
    assert type(model) is type(built)  # the experiment's own nn.Module, not a torch.export graph
    model.eval()
    with torch.no_grad():
        accuracy = (model(data.val_x).argmax(1) == data.val_y).float().mean().item()
    assert accuracy == pytest.approx(result.best_value, abs=1e-6)  # the best epoch's weights, not the last's
    assert best_run.data.tags["model_checkpoint_epoch"] == str(result.best_epoch)
    assert isinstance(model.state_dict(), dict)
