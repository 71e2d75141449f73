"""The best trial's model as an MLflow model on its run: a torch experiment's best epoch from its checkpoint, the
experiment's own `nn.Module` with those weights; an estimator experiment's best config refit on every example.
Which one a sweep logs is its kind's choice (kinds.py)."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from raytune_suite.config import ExperimentConfig
from raytune_suite.run import storage
from raytune_suite.track.store import fluent_tracking_uri


@contextlib.contextmanager
def local_copy(folder: str):
    """The folder itself if local; a temporary copy of a remote one (s3://...), removed afterwards."""
    if not storage.is_remote(folder):
        yield Path(folder)
        return
    with tempfile.TemporaryDirectory(prefix="rts-best-") as tmp:
        yield Path(storage.download_dir(folder, tmp))


def checkpoint_of_epoch(trial_dir: Path, epoch: int) -> tuple[Path, dict] | None:
    """The trial's checkpoint of `epoch` and its state, else its newest one (None if it kept none).

    A trial checkpoints each new best epoch (trainable.py) and Ray keeps each trial's best checkpoints by the
    objective plus its newest (tuner.py), so the best epoch's is there; the newest is a fallback for sweeps whose
    checkpoints were written otherwise."""
    import torch

    from raytune_suite.train.trainable import CHECKPOINT_FILE

    found = sorted(trial_dir.glob("checkpoint_*"), key=lambda p: int(p.name.rsplit("_", 1)[-1]))
    states = [(path, torch.load(path / CHECKPOINT_FILE, map_location="cpu", weights_only=False)) for path in found]
    exact = [(path, state) for path, state in states if state["epoch"] == epoch]
    return (exact or states or [None])[-1]


def all_finite(state_dict: dict) -> bool:
    """No NaN or inf in any floating-point tensor: a model that diverged is not worth publishing."""
    import torch

    return all(bool(torch.isfinite(t).all()) for t in state_dict.values() if t.is_floating_point())


def log_best_model(
    client: MlflowClient,
    run_id: str,
    cfg: ExperimentConfig,
    trial_dir: Path,
    sections: dict[str, dict[str, Any]],
    epoch: int,
    register_as: str | None = None,
) -> str | None:
    """Log the best trial's weights of its best `epoch` on its run as an MLflow PyTorch model; optionally register it.

    The checkpoint holds a state_dict: the experiment's own model is rebuilt from the trial's config (as the
    trainable builds it) and the weights loaded into it, then logged pickled (not torch.export'ed), so that
    `mlflow.pytorch.load_model(uri)` returns that `nn.Module` (`.eval()`, `.state_dict()`, `torch.save` work).
    An experiment loaded from a .py file is pickled by value: the model loads where that file is not. Returns the
    model URI.
    """
    import mlflow
    import torch

    found = checkpoint_of_epoch(trial_dir, epoch)
    if found is None:
        return None
    checkpoint, state = found
    if not all_finite(state["model"]):
        raise ValueError(f"the weights in {checkpoint} are not finite")
    experiment = pickled_experiment(cfg)
    data_cfg = experiment.DataConfig.model_validate(sections["data"])
    data = experiment.load_data(data_cfg, cfg.tune.split_seed)
    model = experiment.build_model(experiment.ModelConfig.model_validate(sections["model"]), data.info)
    model.load_state_dict(state["model"])
    model.eval()
    with logging_to_ended_run(client, run_id, "mlflow.pytorch"):
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            registered_model_name=register_as,
            input_example=data.val_x[:2].numpy(),
            # Naming the requirements skips MLflow's import-tracing subprocess (seconds per model).
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            metadata={"checkpoint": str(checkpoint), "epoch": state["epoch"]},
        )
    client.set_tag(run_id, "model_checkpoint_epoch", str(state["epoch"]))
    return info.model_uri


def log_best_estimator(
    client: MlflowClient,
    run_id: str,
    cfg: ExperimentConfig,
    sections: dict[str, dict[str, Any]],
    register_as: str | None = None,
) -> str:
    """Refit the best config's estimator on every example (as GridSearchCV(refit=True) does) and log it on its run
    as an MLflow sklearn model (`mlflow.sklearn.load_model(uri)` returns it, `.predict` ready); returns its URI."""
    import mlflow
    import sklearn

    from raytune_suite.train.estimators import refit

    experiment = pickled_experiment(cfg)
    estimator, examples = refit(experiment, sections, cfg.tune.split_seed)
    with logging_to_ended_run(client, run_id, "mlflow.sklearn"):
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            # skops, MLflow's default, refuses the experiment's own functions (a tokenizer) as untrusted types.
            serialization_format="cloudpickle",
            registered_model_name=register_as,
            # Naming the requirements skips MLflow's import-tracing subprocess (seconds per model).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            metadata={"refit_examples": examples},
        )
    client.set_tag(run_id, "model_refit_examples", str(examples))
    return info.model_uri


def pickled_experiment(cfg: ExperimentConfig):
    """The sweep's experiment; one loaded from a .py file is pickled by value, so its model loads where that file
    is not."""
    import cloudpickle

    from raytune_suite.experiments import load_experiment

    experiment = load_experiment(cfg.experiment)
    if experiment.ref.endswith(".py"):
        cloudpickle.register_pickle_by_value(experiment.module)
    return experiment


@contextlib.contextmanager
def logging_to_ended_run(client: MlflowClient, run_id: str, flavor_logger: str):
    """The fluent API's active run is this ended trial run for the block; its status is put back afterwards (a
    failed upload must not leave it FAILED). The flavor's pickle warning is silenced: pickling is the point here
    (the user's own class comes back), and the model is the user's own code."""
    import mlflow

    status = client.get_run(run_id).info.status
    logger = logging.getLogger(flavor_logger)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with fluent_tracking_uri(client.tracking_uri), mlflow.start_run(run_id=run_id):
            yield
    finally:
        logger.setLevel(level)
        client.set_terminated(run_id, status)
