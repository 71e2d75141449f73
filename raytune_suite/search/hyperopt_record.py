"""Telling HyperOpt a config it did not propose: a seed point (`tune.points_to_evaluate`), or an earlier trial
replayed into a grown sweep's searcher (`grow.py`).

Ray's `HyperOptSearch(points_to_evaluate=...)` cannot do it for the suite's spaces: it records a nested point under
its section ("train") instead of HyperOpt's labels ("train/lr"), so TPE fails with KeyError 'train/lr' as soon as
its start-up trials are over, and it cannot convert a conditional branch (a choice of dicts) at all. Here the
searcher proposes as usual (`suggest` creates HyperOpt's record of the trial) and the record's values are then
replaced by the config's, under HyperOpt's own labels, through the searcher's public `get_state` / `set_state`.
"""

from __future__ import annotations

import copy
from typing import Any

from ray.tune.search import Searcher


def base_searcher(searcher: Searcher):
    """The searcher inside its wrappers (followed by `.searcher`, as Tune's SearchGenerator does): HyperOpt's."""
    from ray.tune.search.hyperopt import HyperOptSearch

    while not isinstance(searcher, HyperOptSearch):
        searcher = searcher.searcher
    return searcher


def record_config(hyperopt, known: set[int], space: dict, config: dict) -> None:
    """Make the HyperOpt document that the last `suggest` created hold `config` instead of the proposal."""
    state = hyperopt.get_state()
    trials = state["hyperopt_trials"]
    (doc,) = [d for d in trials.trials if d["tid"] not in known]
    vals = hyperopt_vals(space, config)
    misc = doc["misc"]
    unknown = set(vals) - set(misc["vals"])
    if unknown:
        raise RuntimeError(f"telling HyperOpt a config: {sorted(unknown)} are not HyperOpt labels of this space")
    misc["vals"] = {label: vals.get(label, []) for label in misc["vals"]}
    misc["idxs"] = {label: [doc["tid"]] if label in vals else [] for label in misc["vals"]}
    trials.refresh()
    hyperopt.set_state(state)


def hyperopt_vals(space: dict, config: dict, prefix: str = "") -> dict[str, list]:
    """A config as HyperOpt records it: label -> [value], a choice as its index, only parameters that took part.

    The labels are those `HyperOptSearch.convert_search_space` gives the space: the path joined by "/", a branch's
    parameters under the label of the choice that holds them (`train/optimizer/momentum@nesterov`)."""
    from ray.tune.search.sample import Categorical, Domain

    vals: dict[str, list] = {}
    for key, domain in space.items():
        label = f"{prefix}/{key}" if prefix else str(key)
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(domain, dict):
            vals.update(hyperopt_vals(domain, value or {}, label))
        elif isinstance(domain, Categorical):
            index = category_index(domain.categories, value)
            vals[label] = [index]
            if isinstance(domain.categories[index], dict):  # a branch: its own parameters are labelled under it
                vals.update(hyperopt_vals(domain.categories[index], value, label))
        elif isinstance(domain, Domain):
            vals[label] = [value]
    return vals


def category_index(categories: list, value: Any) -> int:
    """Which category `value` is; a branch (a dict) is matched by its fixed entries (its `_value`)."""
    from ray.tune.search.sample import Domain

    for index, category in enumerate(categories):
        if isinstance(category, dict) and isinstance(value, dict):
            fixed = {k: v for k, v in category.items() if not isinstance(v, Domain)}
            if all(value.get(k) == v for k, v in fixed.items()):
                return index
        elif category == value:
            return index
    raise RuntimeError(f"telling HyperOpt a config: {value!r} is none of the choices {categories}")


class SeedPoints(Searcher):
    """Hands out `points` (complete configs in the sweep's space) as the first proposals, each recorded in HyperOpt
    as the config of its trial, so TPE learns from their results like from its own proposals.

    Args:
        searcher: the searcher `searchers.hyperopt` built (wrappers included).
        points: the seed configs, every tuned parameter filled in (`searchers._seed_points`).
    """

    def __init__(self, searcher: Searcher, points: list[dict[str, Any]]):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher  # the name Tune's SearchGenerator follows to save and restore wrapped searchers
        self.points = [copy.deepcopy(p) for p in points]
        self.space: dict | None = None

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if not self.searcher.set_search_properties(metric, mode, config, **spec):
            return False
        self._metric, self._mode, self.space = metric or self._metric, mode or self._mode, config
        return True

    def suggest(self, trial_id: str) -> dict | None:
        if not self.points:
            return self.searcher.suggest(trial_id)
        hyperopt = base_searcher(self.searcher)
        known = {doc["tid"] for doc in hyperopt.get_state()["hyperopt_trials"].trials}
        proposal = self.searcher.suggest(trial_id)
        if proposal is None:
            return None
        point = self.points.pop(0)
        record_config(hyperopt, known, self.space, point)
        # the proposal carries the space's fixed values too; the point's own values replace the tuned ones
        return {key: {**value, **point.get(key, {})} if isinstance(value, dict) else point.get(key, value)
                for key, value in proposal.items()}  # fmt: skip

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict:
        return {"points": self.points}

    def set_state(self, state: dict) -> None:
        self.points = state["points"]
