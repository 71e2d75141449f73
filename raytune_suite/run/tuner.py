"""Assemble the Ray Tune `Tuner` for a validated config: trainable, resources, searcher, scheduler, storage.

The objects are Ray's own (`Tuner`, `TuneConfig`, `RunConfig`, `HyperOptSearch`, `ASHAScheduler`), composed,
not hidden: `build_tuner` returns the `Tuner` and callers may inspect or extend it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune

from raytune_suite.config import ExperimentConfig
from raytune_suite.config.space import build_param_space, grid_size
from raytune_suite.errors import ConfigError
from raytune_suite.run.concurrency import plan_concurrency
from raytune_suite.run.sweep_folder import trial_folder_name
from raytune_suite.search.schedulers import SCHEDULERS
from raytune_suite.search.searchers import SEARCHERS
from raytune_suite.train.kinds import kind_of


def param_space(cfg: ExperimentConfig) -> dict[str, Any]:
    """What every trial's config holds: the sampled sections plus the sweep's fixed `suite` settings."""
    space = build_param_space(cfg.fixed_sections(), cfg.space, grid=cfg.tune.search == "grid")
    space["suite"] = kind_of(cfg).suite(cfg)
    return space


def trainable_for(cfg: ExperimentConfig, trainable: Callable[[dict], None] | None = None):
    """The trainable every trial of this sweep runs (its kind's, unless one is given), with the resources its kind
    reserves: decided here once, for new and for resumed sweeps alike (a resumed DDP sweep must train with DDP
    again)."""
    kind = kind_of(cfg)
    return tune.with_resources(trainable or kind.trainable(), kind.trial_resources(cfg))


def short_trial_dirname(trial) -> str:
    """`<trial id>` instead of Ray's default, which packs the whole config into a 200-character folder name."""
    return trial_folder_name(trial.trial_id)


def total_trials(cfg: ExperimentConfig) -> int:
    """Trials the sweep will run: num_samples, times the grid for grid-style search."""
    return cfg.tune.num_samples * (
        grid_size(cfg.space, grid=cfg.tune.search == "grid") if cfg.tune.search != "hyperopt" else 1
    )


def checkpoint_config(cfg: ExperimentConfig) -> tune.CheckpointConfig:
    """The two best by the objective (the best epoch's weights are the model the sweep publishes) and, always, the
    newest, which a retried or resumed trial continues from.

    PBT keeps every one: a trial waiting for its turn restores from a donor's checkpoint of an earlier sync, which
    the donor may since have dropped (seen: "checkpoint does not exist on storage anymore", the trial FAILED, the
    sweep hung).
    """
    return tune.CheckpointConfig(
        num_to_keep=None if cfg.tune.scheduler == "pbt" else 2,
        checkpoint_score_attribute=cfg.tune.metric,
        checkpoint_score_order=cfg.tune.mode,
    )


def build_tuner(
    cfg: ExperimentConfig,
    *,
    storage_path: str,
    name: str,
    callbacks: list[tune.Callback] = (),
    trainable: Callable[[dict], None] | None = None,
    max_concurrent: int | None = None,
    searcher: Callable[[ExperimentConfig, int], Any] | None = None,
) -> tune.Tuner:
    """`searcher`: builds the search algorithm from the config and the concurrency, as the entries of `SEARCHERS` do
    (default: the config's own); a grown sweep passes its warm-started one (grow.py)."""
    concurrency = plan_concurrency(cfg, requested=max_concurrent, trials=total_trials(cfg))
    pbt = cfg.tune.scheduler == "pbt"
    turns = f"; PBT: all {total_trials(cfg)} trials of the population exist from the start and take turns"
    print(concurrency.line() + (turns if pbt else ""), flush=True)
    # PBT exploits and syncs a population: a searcher holding trials back would leave a trial started after the
    # others finished waiting for a sync point they have passed (seen: the sweep hung). PBT itself takes turns.
    concurrent = 0 if pbt else concurrency.n
    return tune.Tuner(
        trainable_for(cfg, trainable),
        param_space=param_space(cfg),
        tune_config=tune.TuneConfig(
            metric=cfg.tune.metric,
            mode=cfg.tune.mode,
            # The searcher enforces the concurrency limit (see searchers.py).
            search_alg=(searcher or SEARCHERS[cfg.tune.search])(cfg, concurrent),
            scheduler=SCHEDULERS[cfg.tune.scheduler](cfg),
            num_samples=cfg.tune.num_samples,
            trial_dirname_creator=short_trial_dirname,
            # A new process per trial costs ~3 s (importing torch alone is 1.6 s); reuse keeps the data cached too.
            # Safe after a lost worker only with ray_compat.keep_started_actors() (run_sweep applies it).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=cfg.tune.max_failures),
            checkpoint_config=checkpoint_config(cfg),
            verbose=0,
        ),
    )


def restore_tuner(cfg: ExperimentConfig, sweep_dir, *, callbacks: list, trainable=None) -> tune.Tuner:
    """`Tuner.restore` with errored trials resumed from their checkpoints, and today's callbacks.

    Ray pickles the RunConfig (callbacks included) into tuner.pkl at the start of a sweep; the restored copies
    would be stale objects this driver cannot see, so they are replaced by the live ones.
    """
    from raytune_suite.run.ray_compat import set_restored_callbacks

    tuner = tune.Tuner.restore(str(sweep_dir), trainable=trainable_for(cfg, trainable), resume_errored=True)
    if not set_restored_callbacks(tuner, callbacks):
        raise ConfigError("--resume: run the driver on the cluster (--address auto or ray job submit), not via ray://")
    return tuner
