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


def hyperopt(cfg: ExperimentConfig, max_concurrent: int) -> Searcher:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    # HyperOpt's default of 20 random start-up trials would make a 20-trial sweep pure random search.
    n_initial = cfg.tune.n_initial_points or max(3, min(10, cfg.tune.num_samples // 3))
    searcher = HyperOptSearch(
        points_to_evaluate=_seed_points(cfg),
        n_initial_points=n_initial,
        random_state_seed=cfg.tune.seed,
    )
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
