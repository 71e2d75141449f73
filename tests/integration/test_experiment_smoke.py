"""Every shipped experiment runs a real sweep: 2 trials × 1 epoch on a small slice, on one shared local Ray."""

import math

import pytest

from raytune_suite.config import load_config
from raytune_suite.experiments import available_experiments, load_experiment
from raytune_suite.run.sweep import run_sweep
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.integration

TINY = ["tune.num_samples=2", "tune.max_concurrent=2", "train.epochs=1", "tune.asha.grace_period=1"]
# An estimator experiment has no epochs to cut: its defaults, cross-validated twice.
TINY_ESTIMATOR = ["space={}", "tune.num_samples=2", "tune.max_concurrent=2"]


@pytest.mark.parametrize("name", available_experiments())
def test_every_experiment_runs_a_tiny_default_sweep(name, ray_local, store):
    uri, client, storage = store
    experiment = load_experiment(name)
    subset = ["data.subset=300"] if "subset" in experiment.DataConfig.model_fields else []
    tiny = TINY_ESTIMATOR if experiment.kind == "estimator" else TINY
    cfg = load_config(EXPERIMENTS / f"{name}.yaml", [*tiny, *subset])
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    assert result.trials == 2 and result.failed == 0
    assert result.best_value is not None and math.isfinite(result.best_value)
    runs = client.search_runs([result.experiment_id])
    statuses = [(r.info.run_name, r.info.status) for r in runs]
    assert len(runs) == 3 and all(status == "FINISHED" for _, status in statuses), statuses
