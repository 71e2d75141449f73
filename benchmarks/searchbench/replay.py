"""The replay trainable: a problem's curves reported epoch by epoch through a real Ray Tune `Tuner`.

`replay_trial` looks its configuration's curve up and reports it one epoch at a time, as the suite's trainable
reports a trained epoch (a diverged epoch: the objective `WORST`, `diverged: 1`, and the trial ends). `run_real`
runs a strategy's sweep through `Tuner.fit()` on a running Ray instance; with one trial at a time its decisions are
deterministic, and `tests/integration/test_searchbench_replay.py` checks the simulator takes the same ones (same
configs, in the same order, each trained as many epochs). The benchmark itself simulates: hundreds of sweeps
through `Tuner.fit()` would take hours of Ray's own overhead (`benchmarks/sweep_overhead.py`), not minutes.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

from benchmarks.searchbench.problems import Problem, load_problem
from raytune_suite.config.objective import Objective

PROBLEM_KEY = "replay_problem"  # the fixed key of every trial's config that names its problem


@lru_cache(maxsize=4)
def cached_problem(name: str) -> Problem:
    return load_problem(name)


def replay_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: report the configuration's recorded curve, one result per epoch."""
    from ray import tune

    from raytune_suite.config.space import resolve_trial_config

    problem = cached_problem(config[PROBLEM_KEY])
    curve, _ = problem.curve(resolve_trial_config(config))
    started = time.time_ns()  # orders the trials of a one-at-a-time sweep
    for epoch, value in enumerate(curve, 1):
        result = {problem.metric: float(value), "epoch": epoch, "started_ns": started}
        if not math.isfinite(value):
            tune.report({**result, problem.metric: Objective(problem.metric, problem.mode).worst, "diverged": 1.0})
            return
        tune.report(result)


def run_real(problem: Problem, policy, storage_path: str, num_samples: int) -> list[tuple[str, int]]:
    """Run `policy`'s search algorithm and scheduler (a `strategies.RayPolicy`, not yet started) through a real
    `Tuner`, one trial at a time; returns (table key or config, epochs trained) per trial in the order they ran."""
    from ray import tune

    space = {**policy.param_space, PROBLEM_KEY: problem.name}
    tuner = tune.Tuner(
        tune.with_resources(replay_trial, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=problem.metric,
            mode=problem.mode,
            search_alg=policy.searcher,
            scheduler=policy.scheduler,
            num_samples=num_samples,
            reuse_actors=True,
            max_concurrent_trials=None,
        ),
        run_config=tune.RunConfig(name="replay", storage_path=storage_path, verbose=0),
    )
    grid = tuner.fit()
    trials = []
    for result in grid:
        frame = result.metrics_dataframe
        trials.append((int(frame["started_ns"].iloc[0]), describe(problem, result.config), len(frame)))
    return [(config, epochs) for _, config, epochs in sorted(trials)]


def describe(problem: Problem, config: dict[str, Any]) -> str:
    """A trial's configuration as comparable text: its table row, or its sampled values."""
    from raytune_suite.config.space import resolve_trial_config

    sections = resolve_trial_config(config)
    spec = getattr(problem, "spec", None)
    return spec.key(sections) if spec is not None else repr(sorted(sections["model"].items()))
