"""`tune.metric` and `tune.mode`: a metric the trials report, optimised in its own direction."""

import pytest
import torch

from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from raytune_suite.experiments import TASKS, load_experiment


@pytest.mark.parametrize(("metric", "mode"), [("val_loss", "min"), ("train_loss", "min"), ("val_accuracy", "max")])
def test_the_mode_follows_the_chosen_metric_when_the_config_does_not_set_it(mnist_yaml, metric, mode):
    assert load_config(mnist_yaml, [f"tune.metric={metric}"]).tune.mode == mode


def test_maximising_a_loss_is_refused_naming_the_mode_and_the_fix(mnist_yaml):
    with pytest.raises(ConfigError, match=r"^tune\.mode: max .* highest val_loss .* set tune\.mode=min"):
        load_config(mnist_yaml, ["tune.metric=val_loss", "tune.mode=max"])


def test_a_metric_the_task_does_not_report_is_refused_with_the_ones_it_does(mnist_yaml):
    with pytest.raises(ConfigError, match=r"val_rmse is not reported by mnist_cnn; choose one of: val_accuracy"):
        load_config(mnist_yaml, ["tune.metric=val_rmse"])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_gives_a_direction_for_exactly_the_metrics_it_reports(task):
    outputs = torch.randn(6, 3) if task == "classification" else torch.randn(6)
    targets = torch.tensor([0, 1, 2, 0, 1, 2]) if task == "classification" else torch.randn(6)
    assert set(TASKS[task].metrics(outputs, targets)) == set(TASKS[task].directions)


@pytest.mark.parametrize("name", ["mnist_cnn", "diabetes_linear", "movielens_mf", "rt_transformer", "rt_logreg"])
def test_every_shipped_experiment_optimises_a_metric_it_reports_in_its_direction(name):
    experiment = load_experiment(name)
    assert experiment.objectives[experiment.metric] == experiment.mode
