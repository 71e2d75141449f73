"""Searcher registry: how trials' configs are chosen. One factory per `tune.search` name.

Factories import their library lazily, so naming a searcher never costs an import (as Ray's SEARCH_ALG_IMPORT).
Every searcher is wrapped so that `max_concurrent` trials run at once: with a search algorithm Ray Tune
otherwise keeps a single trial pending and the cluster idles.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from raytune_suite.config import check_seed_points_fit_the_searcher
from raytune_suite.config.space import BRANCH_VALUE, conditional_params

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
        from raytune_suite.search.fidelity import RungRanked, milestones

        grace = min(cfg.tune.asha.grace_period, cfg.train.epochs)  # as schedulers.asha clips it
        levels = milestones(grace, cfg.tune.asha.reduction_factor, cfg.train.epochs)
        searcher = RungRanked(searcher, levels)
    if points := _seed_points(cfg):
        # Not HyperOptSearch(points_to_evaluate=...): with the suite's nested spaces TPE then fails (hyperopt_record)
        from raytune_suite.search.hyperopt_record import SeedPoints

        searcher = SeedPoints(searcher, points)
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def branch_point(cfg: ExperimentConfig, point: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A seed point as a trial config of a conditional space holds it: a parent named in the point becomes its
    branch, `{"_value": v, "<child>@v": value}` (space._branches), holding the children the point names.

    Validation (config.check_seed_points_fit_the_searcher) has made sure a named child comes with its parent,
    set to a value where the child exists."""
    out: dict[str, dict[str, Any]] = {}
    for section, values in point.items():
        params = cfg.space.get(section, {})
        children = {name: next(iter(spec.when)) for name, spec in params.items() if spec.when}
        parents = set(children.values())
        out[section] = {k: v for k, v in values.items() if k not in children}
        for parent in parents & set(values):
            out[section][parent] = {BRANCH_VALUE: values[parent]}
        for child, parent in children.items():
            if child in values:
                out[section][parent][f"{child}@{values[parent]}"] = values[child]
    return out


class SeedBranches:
    """Mixed into Ray's `BasicVariantGenerator` (as `SeededVariants`): seed points that pick a branch of a
    conditional space.

    Ray applies a seed point as a preset (`variant_generator._get_preset_variants`): it walks each of the point's
    leaf paths into the param space and sets the value there. A conditional parent is a choice of branches
    (`tune.choice` / `tune.grid_search` of `{"_value": v, ...}` dicts) that no path walks into, so a point naming
    the parent replaced the choice by the plain value (its children never sampled) and one naming a child failed
    with KeyError. Here each seed point is added as an experiment of its own, of one sample, whose param space
    holds the chosen branch in place of the choice, with the children the point names set in it: the others stay
    domains, sampled (or enumerated, under grid search) exactly as the space would. The rest of the point is Ray's
    preset, as before; the experiment's other samples follow, as many as Ray leaves after its seed points.
    """

    def add_configurations(self, experiments) -> None:
        from ray.tune.experiment import _convert_to_experiment_list

        points = self._points_to_evaluate
        try:
            for experiment in _convert_to_experiment_list(experiments):
                for point in points:
                    self._points_to_evaluate = [_without_branches(point)]
                    super().add_configurations(_one_sample(experiment, point, 1))
                self._points_to_evaluate = []
                others = max(0, experiment.spec.get("num_samples", 1) - len(points))
                super().add_configurations(_one_sample(experiment, {}, others))
        finally:
            self._points_to_evaluate = points


@functools.cache
def _seeded_variants() -> type:
    from ray.tune.search import BasicVariantGenerator

    return type("SeededVariants", (SeedBranches, BasicVariantGenerator), {"__module__": __name__})


def __getattr__(name: str) -> Any:
    """`SeededVariants`, made on first use (defined at import, it would import Ray with every config check): Tune
    pickles the search algorithm with the Tuner, by this name."""
    if name == "SeededVariants":
        return _seeded_variants()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _without_branches(point: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s: {k: v for k, v in values.items() if not _is_branch(v)} for s, values in point.items()}


def _is_branch(value: Any) -> bool:
    return isinstance(value, dict) and BRANCH_VALUE in value


def _one_sample(experiment, point: dict[str, dict[str, Any]], num_samples: int):
    """A shallow copy of `experiment` taking `num_samples`, the branches `point` picks in its param space."""
    config = copy.deepcopy(experiment.spec["config"])
    for section, values in point.items():
        for name, branch in values.items():
            if _is_branch(branch):
                choice = config[section][name]  # a Categorical, or {"grid_search": [...]} (space._branches)
                branches = choice["grid_search"] if isinstance(choice, dict) else choice.categories
                (chosen,) = [b for b in branches if b[BRANCH_VALUE] == branch[BRANCH_VALUE]]
                config[section][name] = {**chosen, **branch}
    seeded = copy.copy(experiment)
    seeded.spec = {**experiment.spec, "config": config, "num_samples": num_samples}
    return seeded


def _basic_variant(cfg: ExperimentConfig, max_concurrent: int) -> Searcher:
    from ray.tune.search import BasicVariantGenerator

    points = cfg.tune.points_to_evaluate
    if not (points and conditional_params(cfg.space)):
        return BasicVariantGenerator(
            points_to_evaluate=points or None, max_concurrent=max_concurrent, random_state=cfg.tune.seed
        )
    check_seed_points_fit_the_searcher(cfg)  # the preflight's refusal, again for configs built in code
    return _seeded_variants()(
        points_to_evaluate=[branch_point(cfg, p) for p in points],
        max_concurrent=max_concurrent,
        random_state=cfg.tune.seed,
    )


SEARCHERS: dict[str, Callable[[ExperimentConfig, int], Searcher]] = {
    "hyperopt": hyperopt,
    "random": _basic_variant,
    "grid": _basic_variant,
}
