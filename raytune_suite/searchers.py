"""Searcher registry: how trials' configs are chosen. One factory per `tune.search` name.

Factories import their library lazily, so naming a searcher never costs an import (as Ray's SEARCH_ALG_IMPORT).
Every searcher is wrapped so that `max_concurrent` trials run at once: with a search algorithm Ray Tune
otherwise keeps a single trial pending and the cluster idles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from raytune_suite.config import check_seed_points_fit_the_searcher

if TYPE_CHECKING:
    from ray.tune.search import Searcher

    from raytune_suite.config import ExperimentConfig


def _seed_points(cfg: ExperimentConfig) -> list[dict[str, Any]] | None:
    """Seed points with every tuned parameter filled in (HyperOpt needs complete points)."""
    if not cfg.tune.points_to_evaluate:
        return None
    # The preflight refuses these before anything starts (config.check_seed_points_fit_the_searcher);
    # this guard stays for configs built in code.
    check_seed_points_fit_the_searcher(cfg)
    fixed = cfg.fixed_sections()
    points = []
    for point in cfg.tune.points_to_evaluate:
        full: dict[str, dict[str, Any]] = {}
        for section, params in cfg.space.items():
            for name in params:
                value = point.get(section, {}).get(name, fixed[section].get(name))
                full.setdefault(section, {})[name] = value
        points.append(full)
    return points


def hyperopt(
    cfg: ExperimentConfig, max_concurrent: int, *, rung_ranked: bool = True, random_fraction: float | None = None
) -> Searcher:
    """TPE, with `tune.random_fraction` of its proposals drawn at random (hyperopt's `mix` of `rand` and `tpe`).
    Under ASHA it learns each trial's rank by the rung it reached (`fidelity.RungRanked`), not the last result of
    a trial ASHA stopped early. The keywords are variants `benchmarks/searchbench` compares: `rung_ranked=False`
    is Ray's plain searcher; `random_fraction` overrides the config's."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    # HyperOpt's default of 20 random start-up trials would make a 20-trial sweep pure random search.
    n_initial = cfg.tune.n_initial_points or max(3, min(10, cfg.tune.num_samples // 3))
    searcher = HyperOptSearch(n_initial_points=n_initial, random_state_seed=cfg.tune.seed)
    random_fraction = cfg.tune.random_fraction if random_fraction is None else random_fraction
    if random_fraction:
        from functools import partial

        from hyperopt import mix, rand, tpe

        guided = partial(tpe.suggest, n_startup_jobs=n_initial)
        searcher.algo = partial(mix.suggest, p_suggest=[(random_fraction, rand.suggest), (1 - random_fraction, guided)])
    if rung_ranked and cfg.tune.scheduler == "asha":
        from raytune_suite.fidelity import RungRanked, milestones

        grace = min(cfg.tune.asha.grace_period, cfg.train.epochs)  # as schedulers.asha clips it
        levels = milestones(grace, cfg.tune.asha.reduction_factor, cfg.train.epochs)
        searcher = RungRanked(searcher, levels)
    if points := _seed_points(cfg):
        # Not HyperOptSearch(points_to_evaluate=...): with the suite's nested spaces TPE then fails (hyperopt_record)
        from raytune_suite.hyperopt_record import SeedPoints

        searcher = SeedPoints(searcher, points)
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def _basic_variant(cfg: ExperimentConfig, max_concurrent: int) -> Searcher:
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(
        points_to_evaluate=cfg.tune.points_to_evaluate or None,
        max_concurrent=max_concurrent,
        random_state=cfg.tune.seed,
    )


SEARCHERS: dict[str, Callable[[ExperimentConfig, int], Searcher]] = {
    "hyperopt": hyperopt,
    "random": _basic_variant,
    "grid": _basic_variant,
}
