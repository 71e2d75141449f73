"""`tune.workers_per_trial`: what a multi-worker trial reserves and what its workers are told, without Ray."""

import pytest

from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from raytune_suite.run.tuner import param_space
from raytune_suite.train.distributed import OUTER_CPU
from raytune_suite.train.kinds import kind_of


def test_a_multi_worker_trial_reserves_almost_nothing_and_passes_per_worker_resources_on(mnist_yaml):
    cfg = load_config(mnist_yaml, ["tune.workers_per_trial=4", "tune.resources={cpu: 2, gpu: 1}"])
    assert kind_of(cfg).trial_resources(cfg) == {"cpu": OUTER_CPU, "gpu": 0}
    suite = param_space(cfg)["suite"]
    assert suite["workers_per_trial"] == 4 and suite["worker_resources"] == {"cpu": 2.0, "gpu": 1.0}


def test_a_single_worker_trial_reserves_its_resources_itself(mnist_yaml):
    cfg = load_config(mnist_yaml, ["tune.resources={cpu: 2, gpu: 0.5}"])
    assert kind_of(cfg).trial_resources(cfg) == {"cpu": 2.0, "gpu": 0.5}
    assert "workers_per_trial" not in param_space(cfg)["suite"]


def test_zero_workers_per_trial_is_refused_naming_the_field(mnist_yaml):
    with pytest.raises(ConfigError, match=r"tune\.workers_per_trial"):
        load_config(mnist_yaml, ["tune.workers_per_trial=0"])
