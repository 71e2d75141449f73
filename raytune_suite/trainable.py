"""The one generic Tune function trainable: every experiment trains, evaluates, reports and checkpoints here.

A trial's config holds the sampled sections (`data`, `model`, `train`) and the sweep's fixed `suite` settings.
Each epoch reports `epoch`, `train_loss`, the experiment's validation metrics and `lr`, with a checkpoint
(model, optimizer, LR scheduler, epoch and RNG states), so a retried or resumed trial continues from its last
epoch. This module never talks to MLflow: the driver logs what trials report (see `tracking.py`).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from pydantic import BaseModel

from raytune_suite.config import TrainConfig
from raytune_suite.experiments import Datasets, Experiment, load_experiment
from raytune_suite.optim import OPTIMIZERS, build_optimizer
from raytune_suite.regularize import l2_penalty
from raytune_suite.schedules import build_scheduler
from raytune_suite.space import resolve_trial_config

CHECKPOINT_FILE = "checkpoint.pt"
EVAL_BATCH = 2048
# A diverged trial (NaN/inf loss) reports this instead of a non-finite metric, which would poison TPE.
WORST = 1e30


@dataclass
class Trial:
    """A trial's config, validated into the same typed objects the driver checked."""

    experiment: Experiment
    train: TrainConfig
    model: BaseModel
    data: BaseModel
    seed: int
    metric: str
    mode: str
    checkpoint_every: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Trial:
        suite = config["suite"]
        sections = resolve_trial_config(config)
        experiment = load_experiment(suite["experiment"])
        return cls(
            experiment=experiment,
            train=TrainConfig.model_validate(sections["train"]),
            model=experiment.ModelConfig.model_validate(sections["model"]),
            data=experiment.DataConfig.model_validate(sections["data"]),
            seed=suite["seed"],
            metric=suite["metric"],
            mode=suite["mode"],
            checkpoint_every=suite.get("checkpoint_every", 1),
        )


@lru_cache(maxsize=2)
def cached_data(ref: str, data_json: str, seed: int) -> Datasets:
    """Datasets loaded once per worker process; with actor reuse, later trials in the process skip loading."""
    experiment = load_experiment(ref)
    return experiment.load_data(experiment.DataConfig.model_validate_json(data_json), seed)


def pick_device(gpus: float) -> torch.device:
    if gpus > 0 and torch.cuda.is_available():
        return torch.device("cuda")  # Ray sets CUDA_VISIBLE_DEVICES to this trial's GPU(s)
    if gpus > 0:
        warnings.warn("trial asked for a GPU but CUDA is not available; training on CPU", stacklevel=2)
    return torch.device("cpu")


def _trial_resources() -> dict[str, float]:
    from ray import tune

    try:
        return dict(tune.get_context().get_trial_resources().required_resources)
    except Exception:  # outside a Tune session (direct calls in tests)
        return {"CPU": float(os.cpu_count() or 1)}


def train_epoch(model, data: Datasets, optimizer, scheduler, trial: Trial, gen, device) -> float:
    model.train()
    n = len(data.train_y)
    batch = n if OPTIMIZERS[trial.train.optimizer].full_batch else trial.train.batch_size
    order = torch.randperm(n, generator=gen)
    total = 0.0
    for start in range(0, n, batch):
        idx = order[start : start + batch]
        x, y = data.train_x[idx].to(device), data.train_y[idx].to(device)
        out = model(x)
        loss = trial.experiment.task.loss(out, y, trial.train.label_smoothing)
        loss = loss + l2_penalty(model, trial.train.l2, len(idx))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
    return total / n


@torch.no_grad()
def evaluate(model, data: Datasets, trial: Trial, device) -> dict[str, float]:
    model.eval()
    outputs = [model(data.val_x[i : i + EVAL_BATCH].to(device)).cpu() for i in range(0, len(data.val_y), EVAL_BATCH)]
    return trial.experiment.task.metrics(torch.cat(outputs), data.val_y)


def steps_per_epoch(trial: Trial, n_train: int) -> int:
    if OPTIMIZERS[trial.train.optimizer].full_batch:
        return 1
    return math.ceil(n_train / trial.train.batch_size)


def save_checkpoint(path: str, model, optimizer, scheduler, epoch: int, gen: torch.Generator) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "torch_rng": torch.get_rng_state(),
            "shuffle_rng": gen.get_state(),
        },
        os.path.join(path, CHECKPOINT_FILE),
    )


def restore_checkpoint(checkpoint, model, optimizer, scheduler, gen: torch.Generator) -> int:
    """Load a Tune checkpoint into the live objects; returns the number of epochs already trained.

    The trial's config stays the source of truth for hyperparameters (lr, weight decay, momentum, ...): the
    checkpoint restores only state (weights, optimizer moments, step counts). PBT hands a trial another trial's
    checkpoint with a mutated config, and the mutation must take effect.
    """
    with checkpoint.as_directory() as path:
        state = torch.load(os.path.join(path, CHECKPOINT_FILE), weights_only=False)
    hyper = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in optimizer.param_groups]
    base_lrs = list(scheduler.base_lrs)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scheduler.base_lrs = base_lrs
    for group, values, base, factor in zip(optimizer.param_groups, hyper, base_lrs, scheduler.lr_lambdas, strict=True):
        group.update(values, initial_lr=base, lr=base * factor(scheduler.last_epoch))
    torch.set_rng_state(state["torch_rng"])
    gen.set_state(state["shuffle_rng"])
    return state["epoch"]


def finite_metrics(metrics: dict[str, float], trial: Trial) -> dict[str, float]:
    """Replace non-finite values by the worst finite one, and flag the divergence."""
    if all(math.isfinite(v) for v in metrics.values()):
        return metrics
    worst = WORST if trial.mode == "min" else -WORST
    fixed = {k: (v if math.isfinite(v) else (worst if k == trial.metric else WORST)) for k, v in metrics.items()}
    return {**fixed, "diverged": 1.0}


def train_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: train one trial epoch by epoch, reporting each epoch."""
    from ray import tune

    # One INFO line per checkpoint per epoch drowns the sweep's progress lines.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    trial = Trial.from_config(config)
    resources = _trial_resources()
    torch.set_num_threads(max(1, int(resources.get("CPU", 1))))
    device = pick_device(resources.get("GPU", 0.0))
    data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.seed)

    torch.manual_seed(trial.seed)
    gen = torch.Generator().manual_seed(trial.seed)
    model = trial.experiment.build_model(trial.model, data.info).to(device)
    optimizer = build_optimizer(model, trial.train)
    scheduler = build_scheduler(optimizer, trial.train, steps_per_epoch(trial, len(data.train_y)))

    start = 0
    if (checkpoint := tune.get_checkpoint()) is not None:
        start = restore_checkpoint(checkpoint, model, optimizer, scheduler, gen)

    for epoch in range(start + 1, trial.train.epochs + 1):
        train_loss = train_epoch(model, data, optimizer, scheduler, trial, gen, device)
        metrics = {"epoch": epoch, "train_loss": train_loss, **evaluate(model, data, trial, device)}
        metrics = finite_metrics({**metrics, "lr": optimizer.param_groups[0]["lr"]}, trial)
        if epoch % trial.checkpoint_every and epoch != trial.train.epochs and "diverged" not in metrics:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(tmp, model, optimizer, scheduler, epoch, gen)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        if "diverged" in metrics:
            return
