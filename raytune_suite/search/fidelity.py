"""Like-with-like outcomes for a Bayesian searcher under ASHA: rank each trial by the rung it reached.

Ray Tune tells a searcher a trial's *last* result when the trial ends, so under ASHA a trial stopped after 1 epoch
reports its 1-epoch accuracy as if it were final, beside trials trained for 8 (ray-project/ray#6056). TPE then
models a mix of fidelities: a config that learns fast but plateaus low looks as good as one that won its rungs.

`RungRanked` wraps the searcher and tells it instead a score that orders trials the way ASHA itself judges them:
first by the highest rung a trial reached, then by its metric at that rung; a diverged trial is below every other.
Optuna's TPE orders its pruned trials the same way (by the last step reached, then the value there), and BOHB keeps
a model per budget for the same reason. TPE uses only the order of the losses it is told (its split into good and
bad configs), so the score needs no scale: `rung + squash(value)` with a monotone squash into (0, 1).
The benchmark that chose this over telling the last result (and over other fixes) is `benchmarks/searchbench`.
"""

from __future__ import annotations

import math
import pickle
import tempfile
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from raytune_suite.config.objective import Objective
from raytune_suite.search.schedulers import asha_rungs

SCORE = "rung_score"  # what the wrapped searcher maximises


def milestones(grace_period: float, reduction_factor: float, max_t: float) -> list[float]:
    """ASHA's rungs plus the last epoch: the levels a trial can be judged at, lowest first."""
    return sorted({*asha_rungs(grace_period, reduction_factor, max_t), float(max_t)})


def squash(value: float) -> float:
    """A monotone map of the real line into (0, 1)."""
    return 0.5 + math.atan(value) / math.pi


class RungRanked(Searcher):
    """Wraps a searcher (e.g. `HyperOptSearch`) so that it learns each trial's rank by rung, not its last result.

    Args:
        searcher: the searcher that proposes configs; it is told `rung_score`, to maximise.
        levels: the epochs a trial is judged at (`milestones`), ascending.
        time_attr: the result key that counts epochs (ASHA's `time_attr`).
    """

    def __init__(self, searcher: Searcher, levels: list[float], time_attr: str = "training_iteration"):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.levels = [float(level) for level in levels]
        self.time_attr = time_attr
        self._reached: dict[str, tuple[int, float]] = {}  # trial id -> (level index, metric there)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return self.searcher.set_search_properties(SCORE, "max", config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._note(trial_id, result)
        self.searcher.on_trial_result(trial_id, self._scored(trial_id, result))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result:
            self._note(trial_id, result)
        scored = self._scored(trial_id, result) if result and not error else None
        self._reached.pop(trial_id, None)
        self.searcher.on_trial_complete(trial_id, result=scored, error=error)

    def _note(self, trial_id: str, result: dict) -> None:
        if result.get("diverged"):
            self._reached[trial_id] = (-1, 0.0)
            return
        value, t = result.get(self.metric), result.get(self.time_attr)
        if t is None or value is None or self._reached.get(trial_id, (0, 0.0))[0] < 0:
            return
        if float(t) in self.levels:
            self._reached[trial_id] = (self.levels.index(float(t)), float(value))

    def _scored(self, trial_id: str, result: dict) -> dict:
        """The result with `rung_score`: rung index + the squashed metric at that rung (higher is better).
        A trial that has not reached the first rung yet is scored below it, by its current value."""
        sign = Objective(self.metric, self.mode).sign
        level, value = self._reached.get(trial_id, (-1, result.get(self.metric, math.nan)))
        if level < 0 and result.get("diverged"):
            return {**result, SCORE: -2.0}
        finite = isinstance(value, (int, float)) and math.isfinite(value)
        return {**result, SCORE: level + (squash(sign * value) if finite else 0.0)}

    def get_state(self) -> dict[str, Any]:
        return {"reached": dict(self._reached), "searcher": self.searcher.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self._reached = dict(state["reached"])
        self.searcher.set_state(state["searcher"])

    def save(self, checkpoint_path: str) -> None:
        """One file, as Tune's `save_to_dir` expects: the ranks so far and the wrapped searcher's own save."""
        inner = f"{checkpoint_path}.searcher"
        self.searcher.save(inner)
        try:
            state = {"reached": self._reached, "searcher": Path(inner).read_bytes()}
        finally:
            Path(inner).unlink(missing_ok=True)
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        self._reached = state["reached"]
        with tempfile.TemporaryDirectory() as tmp:
            inner = Path(tmp, "searcher.pkl")
            inner.write_bytes(state["searcher"])
            self.searcher.restore(str(inner))
