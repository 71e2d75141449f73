"""Estimator experiments: each trial scores one config of a scikit-learn estimator by k-fold cross-validation.

The scores are GridSearchCV's own: the folds come from the splitter `GridSearchCV(cv=k)` would build
(`StratifiedKFold` for a classifier of a binary or multiclass target, else `KFold`; `cv.shuffle` seeded by
`cv.seed`, default `tune.split_seed`), the same for every config, and scikit-learn's `cross_validate` fits and scores
them with the scorer `cv.scoring` names. A trial reports once, the row GridSearchCV's `cv_results_` would hold:
`split<k>_test_score`, `mean_test_score` (the sweep's objective), `std_test_score` and the fit and score times,
plus the fold scores as one series (`SERIES`) that the driver logs to MLflow as `cv_<scoring>_fold`, one step per
fold. A fit that raises fails its trial (GridSearchCV would score it NaN): the smoke check fits the corners of the
space first. The best config is refit on every example and logged as an MLflow sklearn model (`publish.py`).
This module never talks to MLflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raytune_suite.config import CvSettings

# The result key of series a trial reports whole, {metric name: [one value per step]}; tracking.py logs each value
# at its own step (here: fold k at step k), so MLflow charts them.
SERIES = "series"


def cv_splitter(cv: CvSettings, estimator: Any, y: Any, seed: int):
    """The folds GridSearchCV(cv=k) uses (sklearn's `check_cv`), shuffled with a seed when `cv.shuffle`."""
    from sklearn.base import is_classifier
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.utils.multiclass import type_of_target

    stratified = is_classifier(estimator) and type_of_target(y) in ("binary", "multiclass")
    random_state = (seed if cv.seed is None else cv.seed) if cv.shuffle else None
    splitter = StratifiedKFold if stratified else KFold
    return splitter(n_splits=cv.folds, shuffle=cv.shuffle, random_state=random_state)


def cross_validation(estimator: Any, x: Any, y: Any, cv: CvSettings, seed: int, n_jobs: int | None = None) -> dict:
    """One config's cross-validation as GridSearchCV's `cv_results_` row holds it (means and population stds)."""
    from sklearn.model_selection import cross_validate

    out = cross_validate(
        estimator, x, y, cv=cv_splitter(cv, estimator, y, seed), scoring=cv.scoring, n_jobs=n_jobs, error_score="raise"
    )
    scores = np.asarray(out["test_score"], dtype=float)
    result: dict[str, Any] = {f"split{k}_test_score": float(s) for k, s in enumerate(scores)}
    for name, values in (("test_score", scores), ("fit_time", out["fit_time"]), ("score_time", out["score_time"])):
        mean, std = _mean_std(np.asarray(values, dtype=float))
        result[f"mean_{name}"], result[f"std_{name}"] = mean, std
    result[SERIES] = {fold_metric(cv): [float(s) for s in scores]}
    return result


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """As GridSearchCV computes them (`np.average`, population std), so the figures agree to the last bit."""
    mean = np.average(values)
    return float(mean), float(np.sqrt(np.average((values - mean) ** 2)))


def fold_metric(cv: CvSettings) -> str:
    """The MLflow metric holding each fold's score, one step per fold: `cv_accuracy_fold`."""
    return f"cv_{cv.scoring}_fold"


def train_estimator_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable of estimator experiments: cross-validate one config and report it once."""
    from ray import tune

    from raytune_suite.config.space import resolve_trial_config
    from raytune_suite.experiments import load_experiment
    from raytune_suite.train.trial_process import cached_data, experiment_code, granted_resources  # no torch

    suite = config["suite"]
    sections = resolve_trial_config(config)
    experiment = load_experiment(suite["experiment"])
    model_cfg = experiment.ModelConfig.model_validate(sections["model"])
    data_cfg = experiment.DataConfig.model_validate(sections["data"])
    cpus = int(granted_resources().get("CPU", 1))
    with experiment_code(experiment):
        x, y = cached_data(experiment.ref, data_cfg.model_dump_json(), suite["split_seed"])
        estimator = experiment.build_estimator(model_cfg)
        cv = CvSettings.model_validate(suite["cv"])
        result = cross_validation(estimator, x, y, cv, suite["split_seed"], n_jobs=cpus if cpus > 1 else None)
    tune.report(result)


def refit(experiment, sections: dict[str, dict[str, Any]], seed: int) -> tuple[Any, int]:
    """The config's estimator fitted on every example, as GridSearchCV(refit=True) leaves `best_estimator_`;
    returns it and the number of examples."""
    x, y = experiment.load_data(experiment.DataConfig.model_validate(sections["data"]), seed)
    estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(sections["model"]))
    return estimator.fit(x, y), len(y)
