"""Trial-scheduler registry: which trials keep training. One factory per `tune.scheduler` name.

Schedulers count time in epochs (`training_iteration`: the trainable reports once per epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from raytune_suite.config import ExperimentConfig


def asha(cfg: ExperimentConfig) -> TrialScheduler:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=cfg.train.epochs,
        grace_period=min(cfg.tune.asha.grace_period, cfg.train.epochs),
        reduction_factor=cfg.tune.asha.reduction_factor,
    )


def fifo(cfg: ExperimentConfig) -> TrialScheduler:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


SCHEDULERS: dict[str, Callable[[ExperimentConfig], TrialScheduler]] = {"asha": asha, "fifo": fifo}
