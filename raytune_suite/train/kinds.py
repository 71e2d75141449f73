"""What kind of experiment a sweep runs, decided once: one object per kind owns everything that differs by kind.

| kind        | an experiment that            | a trial                              | one result   | best model      |
|-------------|-------------------------------|--------------------------------------|--------------|-----------------|
| `torch`     | defines `build_model`         | trains epoch by epoch, one process   | an epoch     | its best epoch  |
| `torch-ddp` | the same, `workers_per_trial` | trains with DDP, Ray Train workers   | an epoch     | its best epoch  |
| `estimator` | defines `build_estimator`     | cross-validates a sklearn estimator  | the CV score | refit on all    |

Each kind owns its trainable and the resources a trial reserves, what a trial's `suite` settings carry, the smoke
check, the plan's unit of work and how one is timed, what publishing logs as the best model, and what the console
and the report show. The sweep, the planner, the preflight, the tracker and the CLI ask `kind_of(cfg)`; none of
them asks which kind it is. A new kind is one class here (tests/contract/test_kinds.py runs every entry of `KINDS`
through the same checks).

Heavy imports (torch, scikit-learn, Ray Train) happen inside the methods, so naming a kind costs nothing: an
estimator sweep never imports torch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raytune_suite.config import ExperimentConfig


class Kind:
    """The torch kind: a model trained epoch by epoch, one process per trial."""

    name = "torch"
    step = "epoch"  # what one reported result is (progress lines, the parent run's `step` tag)
    plan_unit = "epoch"  # the unit of work the plan counts and calibration times
    per_epoch = True  # results form a learning curve: the report plots it, ASHA's rungs and best epochs mean something
    uses_dashboard = False  # Ray's dashboard (Ray Train's workers need it)

    def __repr__(self) -> str:
        return f"<kind {self.name}>"

    # -- trials ------------------------------------------------------------------------------------------------
    def trainable(self) -> Callable[[dict], None]:
        from raytune_suite.train.trainable import train_trial

        return train_trial

    def trial_resources(self, cfg: ExperimentConfig) -> dict[str, float]:
        """What the Tune trial itself reserves."""
        return {"cpu": cfg.tune.resources.cpu, "gpu": cfg.tune.resources.gpu}

    def suite(self, cfg: ExperimentConfig) -> dict[str, Any]:
        """What a trial needs beyond the sampled config: its `suite` section (tuner.param_space)."""
        return {
            "experiment": cfg.experiment,
            "seed": cfg.tune.seed,
            "split_seed": cfg.tune.split_seed,
            "metric": cfg.tune.metric,
            "mode": cfg.tune.mode,
            "checkpoint_every": cfg.tune.checkpoint_every,
            **self.suite_settings(cfg),
        }

    def suite_settings(self, cfg: ExperimentConfig) -> dict[str, Any]:
        """What this kind's trials add to the `suite` section."""
        return {}

    def parent_params(self, cfg: ExperimentConfig) -> dict[str, str]:
        """The sweep-level settings logged as the parent run's params, besides the fixed sections."""
        tune = cfg.tune.model_dump(exclude={"points_to_evaluate", *self.inert_tune_keys})
        return {f"tune.{k}": str(v) for k, v in tune.items()}

    inert_tune_keys: tuple[str, ...] = ()  # `tune` keys that mean nothing for this kind (not logged)

    def max_steps(self, cfg: ExperimentConfig) -> int:
        """Results one trial reports if nothing stops it."""
        return cfg.train.epochs

    # -- before anything starts ----------------------------------------------------------------------------------
    def smoke_check(self, cfg: ExperimentConfig) -> None:
        from raytune_suite.check.smoke import torch_smoke_check

        torch_smoke_check(cfg)

    def steps_text(self, cfg: ExperimentConfig) -> str:
        """`validate`'s words for what a trial does."""
        return f"{cfg.train.epochs} epoch(s) max"

    def parallel_units(self, cfg: ExperimentConfig) -> int:
        """Units of work one trial runs at once."""
        return 1

    def time_unit(self, cfg: ExperimentConfig) -> tuple[float, str]:
        """One epoch of the defaults through the trainable's own `one_epoch` (train + evaluate), as a trial runs
        it; data loading and model building are not timed."""
        import torch

        from raytune_suite.check.smoke import user_code
        from raytune_suite.train.trainable import Trial, build_training, one_epoch, pick_device, resolve_precision

        trial = Trial.from_config({**cfg.fixed_sections(), "suite": self.suite(cfg)})
        threads, before = max(1, int(cfg.tune.resources.cpu)), torch.get_num_threads()
        torch.set_num_threads(threads)  # what the trainable gives a trial
        try:
            device = pick_device(cfg.tune.resources.gpu)
            precision = resolve_precision(trial.train.precision, device)
            trial.train = trial.train.model_copy(update={"precision": precision})
            with user_code(trial.experiment, "an epoch of the defaults"):
                data = trial.experiment.load_data(trial.data, trial.split_seed)
                training = build_training(trial, data, device)
                started = time.perf_counter()
                one_epoch(training, 1)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - started
        finally:
            torch.set_num_threads(before)
        examples = len(data.train_y)
        return seconds, f"one epoch of the defaults ({examples} training examples, {threads} thread(s), {device})"

    # -- after the last trial ------------------------------------------------------------------------------------
    def prepare_publishing(self) -> None:
        """Import what logging the best model needs (mlflow.pytorch alone takes ~1.1 s here) while trials train."""
        import mlflow.pytorch  # noqa: F401  (imports torch)

    def log_best(self, client, cfg: ExperimentConfig, sweep_dir: str, trial_id: str, record, register: str | None):
        """The best trial's best epoch, from its checkpoint, as an MLflow PyTorch model on its run."""
        from raytune_suite.review.best_model import local_copy, log_best_model
        from raytune_suite.run.sweep_folder import trial_folder

        trial_dir = trial_folder(sweep_dir, trial_id)
        with local_copy(trial_dir) as local:
            uri = log_best_model(client, record.run_id, cfg, local, record.best_config, record.best_epoch, register)
        if uri is None:
            print(f"warning: best model not logged: no checkpoint under {trial_dir}", file=sys.stderr)

    def best_at(self, cfg: ExperimentConfig, best_epoch: int) -> str:
        """Where the summary says the best value was reached."""
        return f"at epoch {best_epoch}"


class DistributedKind(Kind):
    """A torch model trained with DDP over `tune.workers_per_trial` Ray Train workers per trial (distributed.py)."""

    name = "torch-ddp"
    uses_dashboard = True

    def trainable(self) -> Callable[[dict], None]:
        from raytune_suite.train.distributed import train_distributed

        return train_distributed

    def trial_resources(self, cfg: ExperimentConfig) -> dict[str, float]:
        """Almost nothing: its training workers reserve `tune.resources` each, and a trial holding CPUs its workers
        need could deadlock."""
        from raytune_suite.train.distributed import OUTER_CPU

        return {"cpu": OUTER_CPU, "gpu": 0}

    def suite_settings(self, cfg: ExperimentConfig) -> dict[str, Any]:
        """What the trial's TorchTrainer needs."""
        return {
            "workers_per_trial": cfg.tune.workers_per_trial,
            "worker_resources": {"cpu": cfg.tune.resources.cpu, "gpu": cfg.tune.resources.gpu},
            "max_failures": cfg.tune.max_failures,
        }


class EstimatorKind(Kind):
    """A scikit-learn estimator, cross-validated once per trial (estimators.py)."""

    name = "estimator"
    step = "cross-validation"
    plan_unit = "fit"
    per_epoch = False
    inert_tune_keys = ("asha", "checkpoint_every", "workers_per_trial")

    def parent_params(self, cfg: ExperimentConfig) -> dict[str, str]:
        return {**super().parent_params(cfg), **{f"cv.{k}": str(v) for k, v in cfg.cv.model_dump().items()}}

    def trainable(self) -> Callable[[dict], None]:
        from raytune_suite.train.estimators import train_estimator_trial

        return train_estimator_trial

    def suite_settings(self, cfg: ExperimentConfig) -> dict[str, Any]:
        return {"cv": cfg.cv.model_dump()}  # what its cross-validation needs

    def max_steps(self, cfg: ExperimentConfig) -> int:
        return 1

    def smoke_check(self, cfg: ExperimentConfig) -> None:
        from raytune_suite.check.smoke import estimator_smoke_check

        estimator_smoke_check(cfg)

    def steps_text(self, cfg: ExperimentConfig) -> str:
        return f"{cfg.cv.folds}-fold cross-validation (scoring={cfg.cv.scoring}) per trial"

    def parallel_units(self, cfg: ExperimentConfig) -> int:
        """A trial fits its folds with n_jobs = its CPUs (estimators.py)."""
        return max(1, min(int(cfg.tune.resources.cpu), cfg.cv.folds))

    def time_unit(self, cfg: ExperimentConfig) -> tuple[float, str]:
        """One cross-validation fit and score of the defaults: the first fold, as a trial fits it."""
        from sklearn.model_selection import cross_validate

        from raytune_suite.check.smoke import user_code
        from raytune_suite.experiments import load_experiment
        from raytune_suite.train.estimators import cv_splitter

        experiment = load_experiment(cfg.experiment)
        sections = cfg.fixed_sections()
        with user_code(experiment, "load_data"):
            x, y = experiment.load_data(experiment.DataConfig.model_validate(sections["data"]), cfg.tune.split_seed)
        with user_code(experiment, "build_estimator"):
            estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(sections["model"]))
        first = next(cv_splitter(cfg.cv, estimator, y, cfg.tune.split_seed).split(x, y))
        with user_code(experiment, "the estimator's fit"):
            started = time.perf_counter()
            cross_validate(estimator, x, y, cv=[first], scoring=cfg.cv.scoring, error_score="raise")
            seconds = time.perf_counter() - started
        return seconds, f"one fit and score of the defaults (fold 1 of {cfg.cv.folds}, {len(first[0])} examples)"

    def prepare_publishing(self) -> None:
        import mlflow.sklearn  # noqa: F401

    def log_best(self, client, cfg: ExperimentConfig, sweep_dir: str, trial_id: str, record, register: str | None):
        """The best config's estimator refit on every example (as GridSearchCV(refit=True)), as an MLflow sklearn
        model on the best trial's run."""
        from raytune_suite.review.best_model import log_best_estimator

        log_best_estimator(client, record.run_id, cfg, record.best_config, register)

    def best_at(self, cfg: ExperimentConfig, best_epoch: int) -> str:
        return f"{cfg.cv.folds}-fold {cfg.cv.scoring}"


KINDS: dict[str, Kind] = {kind.name: kind for kind in (Kind(), DistributedKind(), EstimatorKind())}


def kind_of(cfg: ExperimentConfig) -> Kind:
    """The sweep's kind: the experiment's protocol (`build_estimator` or `build_model`), then DDP or not."""
    if cfg.kind == "estimator":
        return KINDS["estimator"]
    return KINDS["torch-ddp" if cfg.tune.workers_per_trial > 1 else "torch"]
