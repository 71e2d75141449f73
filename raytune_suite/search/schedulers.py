"""Trial-scheduler registry: which trials keep training. One factory per `tune.scheduler` name.

Schedulers count time in epochs (`training_iteration`: the trainable reports once per epoch).
`pbt` also changes configs: every `perturbation_interval` epochs the bottom quarter of trials continue from a
top trial's checkpoint with its config, perturbed. It mutates only the continuous `train` parameters of the space
(lr, weight decay, momentum, ...): a changed model shape or optimizer type could not load the donor's checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from raytune_suite.config import ExperimentConfig


def asha_rungs(grace_period: float, reduction_factor: float, max_t: float) -> list[float]:
    """The epochs at which ASHA (one bracket, as `asha` builds it) compares trials: grace · η^k, computed as
    `ray.tune.schedulers.ASHAScheduler` does from the same public parameters (its `_Bracket`: int(log(max_t / grace)
    / log(η) + 1) rungs, float rounding included, so max_t itself can be one: 1, 3, 9, 27 for max_t 27)."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in range(count)]


def asha(cfg: ExperimentConfig) -> TrialScheduler:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=cfg.train.epochs,
        grace_period=min(cfg.tune.asha.grace_period, cfg.train.epochs),
        reduction_factor=cfg.tune.asha.reduction_factor,
    )


# Epochs between PBT's exploit/explore steps: the trainable checkpoints every epoch, so any interval works.
PBT_PERTURBATION_INTERVAL = 1


def pbt_mutable_params(cfg: ExperimentConfig) -> list[str]:
    """The `train` parameters PBT may perturb: continuous, unconditional ones."""
    return [
        name
        for name, spec in cfg.space.get("train", {}).items()
        if spec.type in ("uniform", "loguniform") and not spec.when
    ]


def check_pbt(cfg: ExperimentConfig) -> None:
    """PBT's needs, checked by the preflight before Ray or MLflow start (and again when PBT is built)."""
    from raytune_suite.errors import ConfigError

    if cfg.tune.scheduler != "pbt":
        return
    if cfg.tune.search == "hyperopt":
        raise ConfigError("tune.scheduler: pbt proposes configs itself; set tune.search: random (or grid)")
    if cfg.tune.max_concurrent:
        raise ConfigError(
            "tune.max_concurrent: pbt runs its whole population (tune.num_samples), trials taking turns when the "
            "cluster is full; remove tune.max_concurrent, or lower tune.num_samples"
        )
    if not pbt_mutable_params(cfg):
        raise ConfigError(
            "tune.scheduler: pbt mutates continuous train parameters; add one to the space, "
            "e.g. space.train.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}"
        )


def pbt_mutations(cfg: ExperimentConfig) -> dict[str, dict]:
    """The mutable `train` parameters as Ray Tune domains."""
    check_pbt(cfg)
    train = cfg.space["train"]
    return {"train": {name: train[name].to_domain() for name in pbt_mutable_params(cfg)}}


def clip_to_the_space(cfg: ExperimentConfig, config: dict) -> dict:
    """A PBT-explored trial config with each mutated `train` parameter put back inside its range.

    Why: Ray's PBT perturbs a value by multiplying it by 0.8 or 1.2 (`pbt._explore`) and never clips it, so the
    clones of a top trial near a bound left the space (a weight decay below its low; an lr past its high, where
    gradient descent diverges). Only uniform/loguniform parameters are mutated (`pbt_mutable_params`), drawn
    from [low, high): a value is clipped to that; quantized and integer ones are never perturbed, so stay valid."""
    train = dict(config["train"])
    for name in pbt_mutable_params(cfg):
        spec = cfg.space["train"][name]
        train[name] = min(max(train[name], spec.low), math.nextafter(spec.high, spec.low))
    return {**config, "train": train}


def pbt(cfg: ExperimentConfig) -> TrialScheduler:
    from ray.tune.schedulers import PopulationBasedTraining

    return PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=PBT_PERTURBATION_INTERVAL,
        hyperparam_mutations=pbt_mutations(cfg),
        custom_explore_fn=partial(clip_to_the_space, cfg),  # Ray calls it on every explored config
        quantile_fraction=0.25,
        # Generations line up: every trial waits at each interval, so a donor's checkpoint is at the same epoch
        # (asynchronous PBT lets a slow trial jump to a fast donor's later epoch, or its last one).
        synch=True,
    )


def fifo(cfg: ExperimentConfig) -> TrialScheduler:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


SCHEDULERS: dict[str, Callable[[ExperimentConfig], TrialScheduler]] = {"asha": asha, "fifo": fifo, "pbt": pbt}
