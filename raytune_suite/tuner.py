"""Assemble the Ray Tune `Tuner` for a validated config: trainable, resources, searcher, scheduler, storage.

The objects are Ray's own (`Tuner`, `TuneConfig`, `RunConfig`, `HyperOptSearch`, `ASHAScheduler`), composed,
not hidden: `build_tuner` returns the `Tuner` and callers may inspect or extend it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray
from ray import tune

from raytune_suite.actor_reuse import keep_started_actors
from raytune_suite.config import ExperimentConfig
from raytune_suite.schedulers import SCHEDULERS
from raytune_suite.searchers import SEARCHERS
from raytune_suite.space import build_param_space, grid_size
from raytune_suite.trainable import train_trial

# Actor reuse as Ray 2.60 does it stops a trial's booting process whenever a warm one frees up, so a sweep that lost
# a worker stays at one trial at a time (actor_reuse.py). Applied on import so resumed sweeps (Tuner.restore) get it.
keep_started_actors()


def param_space(cfg: ExperimentConfig) -> dict[str, Any]:
    """What every trial's config holds: the sampled sections plus the sweep's fixed `suite` settings."""
    space = build_param_space(cfg.fixed_sections(), cfg.space)
    space["suite"] = {
        "experiment": cfg.experiment,
        "seed": cfg.tune.seed,
        "metric": cfg.tune.metric,
        "mode": cfg.tune.mode,
        "checkpoint_every": cfg.tune.checkpoint_every,
    }
    if cfg.tune.workers_per_trial > 1:  # what the trial's TorchTrainer needs (distributed.py)
        space["suite"].update(
            workers_per_trial=cfg.tune.workers_per_trial,
            worker_resources={"cpu": cfg.tune.resources.cpu, "gpu": cfg.tune.resources.gpu},
            max_failures=cfg.tune.max_failures,
        )
    return space


def trial_resources(cfg: ExperimentConfig) -> dict[str, float]:
    """What the Tune trial itself reserves. A multi-worker trial reserves almost nothing: its training workers
    reserve `tune.resources` each (distributed.py), and a trial holding CPUs its workers need could deadlock."""
    if cfg.tune.workers_per_trial > 1:
        from raytune_suite.distributed import OUTER_CPU

        return {"cpu": OUTER_CPU, "gpu": 0}
    return {"cpu": cfg.tune.resources.cpu, "gpu": cfg.tune.resources.gpu}


def cluster_capacity(cfg: ExperimentConfig) -> int:
    """How many trials of this size the connected Ray cluster can run at once (at least 1)."""
    total = ray.cluster_resources()
    workers = cfg.tune.workers_per_trial
    outer = trial_resources(cfg)["cpu"] if workers > 1 else 0.0
    fits = [total.get("CPU", 0) / (cfg.tune.resources.cpu * workers + outer)]
    if cfg.tune.resources.gpu > 0:
        fits.append(total.get("GPU", 0) / (cfg.tune.resources.gpu * workers))
    return max(1, int(min(fits) + 1e-9))


def short_trial_dirname(trial) -> str:
    """`<trial id>` instead of Ray's default, which packs the whole config into a 200-character folder name."""
    return f"trial_{trial.trial_id}"


def total_trials(cfg: ExperimentConfig) -> int:
    """Trials the sweep will run: num_samples, times the grid for grid-style search."""
    return cfg.tune.num_samples * (grid_size(cfg.space) if cfg.tune.search != "hyperopt" else 1)


def build_tuner(
    cfg: ExperimentConfig,
    *,
    storage_path: str,
    name: str,
    callbacks: list[tune.Callback] = (),
    trainable: Callable[[dict], None] | None = None,
    max_concurrent: int | None = None,
) -> tune.Tuner:
    concurrent = max_concurrent or cfg.tune.max_concurrent or cluster_capacity(cfg)
    resources = trial_resources(cfg)
    if trainable is None:
        from raytune_suite.distributed import train_distributed

        trainable = train_distributed if cfg.tune.workers_per_trial > 1 else train_trial
    return tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space=param_space(cfg),
        tune_config=tune.TuneConfig(
            metric=cfg.tune.metric,
            mode=cfg.tune.mode,
            # The searcher enforces the concurrency limit (see searchers.py).
            search_alg=SEARCHERS[cfg.tune.search](cfg, concurrent),
            scheduler=SCHEDULERS[cfg.tune.scheduler](cfg),
            num_samples=cfg.tune.num_samples,
            trial_dirname_creator=short_trial_dirname,
            # A new process per trial costs ~3 s (importing torch alone is 1.6 s); reuse keeps the data cached too.
            # Safe after a lost worker only with keep_started_actors() (applied on import above).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=cfg.tune.max_failures),
            # Two, not one: the newest may be half-written when a node dies.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=0,
        ),
    )
