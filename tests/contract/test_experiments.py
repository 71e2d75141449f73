"""Every experiment module and every shipped YAML, exercised the same way: adding one tests it for free."""

import math

import pytest
import torch

from raytune_suite.config import load_config
from raytune_suite.experiments import TASKS, available_experiments, load_experiment
from raytune_suite.train.estimators import cross_validation
from tests.conftest import EXPERIMENTS

YAMLS = sorted(EXPERIMENTS.glob("*.yaml"))
TORCH = [name for name in available_experiments() if load_experiment(name).kind == "torch"]
ESTIMATORS = [name for name in available_experiments() if load_experiment(name).kind == "estimator"]


def test_every_experiment_module_has_a_yaml():
    assert available_experiments(), "no experiments found"
    assert {p.stem for p in YAMLS} >= set(available_experiments())


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg.tune.metric and cfg.space, "a shipped sweep tunes something"


@pytest.mark.parametrize("name", TORCH)
def test_every_torch_experiment_loads_data_and_builds_a_model_that_fits_it(name):
    cfg = load_config(EXPERIMENTS / f"{name}.yaml", ["data.subset=200"] if "subset" in _data_fields(name) else [])
    experiment = load_experiment(cfg.experiment)
    data = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), seed=0)
    assert len(data.train_y) > len(data.val_y) > 0
    model = experiment.build_model(experiment.ModelConfig.model_validate(cfg.model), data.info)
    out = model(data.val_x[:8])
    metrics = TASKS[experiment.TASK].metrics(out, data.val_y[:8])
    assert experiment.METRIC in metrics
    loss = TASKS[experiment.TASK].loss(out, data.val_y[:8])
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_estimator_experiment_loads_data_and_cross_validates_its_estimator(name):
    cfg = load_config(EXPERIMENTS / f"{name}.yaml", ["data.subset=200"] if "subset" in _data_fields(name) else [])
    experiment = load_experiment(cfg.experiment)
    x, y = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), seed=0)
    assert len(x) == len(y) > cfg.cv.folds
    estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(cfg.model))
    result = cross_validation(estimator, x, y, cfg.cv, seed=0)
    assert cfg.tune.metric == "mean_test_score" and cfg.tune.scheduler == "fifo"
    assert math.isfinite(result["mean_test_score"])
    assert len([k for k in result if k.startswith("split")]) == cfg.cv.folds


def test_every_experiment_is_a_torch_or_an_estimator_experiment():
    assert sorted(TORCH + ESTIMATORS) == available_experiments()
    assert ESTIMATORS, "no estimator experiment ships: the cross-validation path is untested"


def _data_fields(name: str) -> set[str]:
    return set(load_experiment(name).DataConfig.model_fields)
