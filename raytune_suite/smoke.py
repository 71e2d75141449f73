"""The smoke check: the experiment's own code runs before any cluster time is spent.

An estimator experiment (build_estimator) is fitted and scored instead, on a slice of its first fold
(`estimator_smoke_check`).

Loads the experiment's data, builds its model for the config's defaults and for the far corner of the search
space (every tuned parameter at its last value: the high end of a range, the last choice), and runs one forward
and backward pass on a few training examples, then evaluates a few validation ones, on CPU in this process. An
error there would fail every trial the same way after Ray and MLflow started, so it is a one-line `ConfigError`
naming the experiment file, function and line.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from raytune_suite.config import ExperimentConfig
from raytune_suite.errors import ConfigError

EXAMPLES = 8  # enough for a batch-norm layer, few enough to cost milliseconds


def smoke_check(cfg: ExperimentConfig) -> None:
    from raytune_suite.experiments import load_experiment

    experiment = load_experiment(cfg.experiment)
    if experiment.kind == "estimator":
        estimator_smoke_check(cfg, experiment)
        return
    with user_code(experiment, "load_data"):
        data = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    if len(data.train_y) == 0 or len(data.val_y) == 0:
        raise ConfigError(
            f"experiment: {experiment.ref} load_data returned {len(data.train_y)} training and {len(data.val_y)} "
            "validation examples; both need at least one (check data.path and data.val_size)"
        )
    for sections in (cfg.fixed_sections(), far_corner(cfg)):
        forward_and_backward(experiment, data, sections)


def far_corner(cfg: ExperimentConfig, position: int = -1) -> dict[str, dict[str, Any]]:
    """The defaults with every tuned parameter at its last candidate value (`position` 0: its first); a conditional
    one only where its condition then holds (no Ray import: this check must stay quick)."""
    sections = {name: dict(values) for name, values in cfg.fixed_sections().items()}
    for section, params in cfg.space.items():
        ordered = sorted(params.items(), key=lambda item: bool(item[1].when))  # conditions read their parents
        for name, spec in ordered:
            values = sections[section]
            if all(values.get(parent) in allowed for parent, allowed in (spec.when or {}).items()):
                values[name] = spec.candidates()[position]
    return sections


def estimator_smoke_check(cfg: ExperimentConfig, experiment) -> None:
    """An estimator experiment: its data loads as (X, y), `cv.folds` splits it, and its estimator fits and is
    scored by `cv.scoring` on a few examples, for the defaults and both corners of the space (the first and the
    last candidates: a solver that cannot take a penalty fails here, not in every trial)."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.utils import resample

    from raytune_suite.estimators import cv_splitter

    with user_code(experiment, "load_data"):
        data = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    if not (isinstance(data, tuple | list) and len(data) == 2 and len(data[0]) == len(data[1]) > 0):
        raise ConfigError(
            f"experiment: {experiment.ref} load_data must return (X, y) with one label per example and at least "
            "one example; see docs/writing-an-experiment.md"
        )
    x, y = data
    few = None
    for sections in (cfg.fixed_sections(), far_corner(cfg, 0), far_corner(cfg)):
        with user_code(experiment, "build_estimator"):
            estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(sections["model"]))
        if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
            raise ConfigError(
                f"experiment: {experiment.ref} build_estimator returned {type(estimator).__name__}, not a "
                f"scikit-learn estimator, for model {sections['model']}; return the estimator"
            )
        if few is None:  # the folds are the same for every config
            splitter = cv_splitter(cfg.cv, estimator, y, cfg.tune.split_seed)
            try:
                next(splitter.split(x, y))
            except ValueError as err:
                raise ConfigError(f"cv.folds: {' '.join(str(err).split())}; lower cv.folds") from None
            stratify = y if isinstance(splitter, StratifiedKFold) else None  # every class among the few
            n = min(len(y), ESTIMATOR_EXAMPLES)
            few = resample(x, y, replace=False, n_samples=n, stratify=stratify, random_state=cfg.tune.split_seed)
        with user_code(experiment, f"the estimator's fit (model {sections['model']})"):
            estimator.fit(*few)
        scoring_check(cfg, estimator, *few)


ESTIMATOR_EXAMPLES = 200  # every class, and a fit of milliseconds


def scoring_check(cfg: ExperimentConfig, estimator, x, y) -> None:
    """`cv.scoring` can score this estimator (roc_auc needs predict_proba or decision_function, ...)."""
    from sklearn.metrics import get_scorer

    try:
        get_scorer(cfg.cv.scoring)(estimator, x, y)
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(
            f"cv.scoring: {cfg.cv.scoring} cannot score {type(estimator).__name__}: {type(exc).__name__}: {message}; "
            "choose another scorer"
        ) from None


def forward_and_backward(experiment, data, sections: dict[str, dict[str, Any]]) -> None:
    import torch

    with user_code(experiment, "build_model"):
        model = experiment.build_model(experiment.ModelConfig.model_validate(sections["model"]), data.info)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"experiment: {experiment.ref} build_model returned {type(model).__name__}, not a torch.nn.Module, "
            f"for model {sections['model']}; return the model"
        )
    with user_code(experiment, "a training step (the model's forward and the task's loss)"):
        model.train()
        loss = experiment.task.loss(model(data.train_x[:EXAMPLES]), data.train_y[:EXAMPLES])
        # No optimizer: building one imports torch._dynamo (~2 s here), and the optimizer is not the user's code.
        loss.backward()
        model.eval()
        with torch.no_grad():
            experiment.task.metrics(model(data.val_x[:EXAMPLES]).float(), data.val_y[:EXAMPLES])


class user_code:
    """Turns an exception raised by the experiment's code into one line naming where in that code it arose."""

    def __init__(self, experiment, what: str):
        self.experiment, self.what = experiment, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, ConfigError) or not isinstance(exc, Exception):
            return False
        where = user_frame(self.experiment, tb)
        message = " ".join(str(exc).split()) or "(no message)"
        raise ConfigError(
            f"experiment: {where}: {type(exc).__name__}: {message}; fix {self.what} in the experiment "
            "(checked on a few examples before anything starts)"
        ) from None


def user_frame(experiment, tb) -> str:  # also used by the trainable for errors raised in trials
    """`file:line in function` of the deepest frame in the experiment's own file (else the deepest frame)."""
    frames = traceback.extract_tb(tb)
    source = getattr(experiment.module, "__file__", None)
    own = [f for f in frames if source and Path(f.filename) == Path(source)]
    frame = (own or frames)[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"
