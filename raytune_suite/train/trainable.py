"""The one generic Tune function trainable: every experiment trains, evaluates, reports and checkpoints here.

A trial's config holds the sampled sections (`data`, `model`, `train`) and the sweep's fixed `suite` settings.
Each epoch reports `epoch`, `train_loss`, the experiment's validation metrics and `lr`, with a checkpoint
(model, optimizer, LR scheduler, fp16 loss scaler, epoch and RNG states), so a retried or resumed trial continues
from its last epoch. This module never talks to MLflow: the driver logs what trials report (see `tracking.py`).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel

from raytune_suite.config import TrainConfig
from raytune_suite.config.objective import Objective
from raytune_suite.config.space import resolve_trial_config
from raytune_suite.experiments import Datasets, Experiment, load_experiment
from raytune_suite.train.optim import OPTIMIZERS, build_optimizer
from raytune_suite.train.regularize import l2_penalty
from raytune_suite.train.schedules import build_scheduler
from raytune_suite.train.trial_process import (  # the trial's process, shared
    cached_data,
    experiment_code,
    granted_resources,
)

CHECKPOINT_FILE = "checkpoint.pt"
EVAL_BATCH = 2048
# A diverged trial (NaN/inf loss) reports this for its objective instead of a non-finite value, which would poison
# TPE and ASHA's rungs; the driver logs the objective as NaN and never lets the trial win (tracking.py).


@dataclass
class Trial:
    """A trial's config, validated into the same typed objects the driver checked."""

    experiment: Experiment
    train: TrainConfig
    model: BaseModel
    data: BaseModel
    seed: int
    split_seed: int
    metric: str
    mode: str
    checkpoint_every: int

    @property
    def objective(self) -> Objective:
        return Objective(self.metric, self.mode)

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
            split_seed=suite.get("split_seed", suite["seed"]),  # a sweep started before split_seed: its split
            metric=suite["metric"],
            mode=suite["mode"],
            checkpoint_every=suite.get("checkpoint_every", 1),
        )


def pick_device(gpus: float) -> torch.device:
    if gpus > 0 and torch.cuda.is_available():
        return torch.device("cuda")  # Ray sets CUDA_VISIBLE_DEVICES to this trial's GPU(s)
    if gpus > 0:
        warnings.warn("trial asked for a GPU but CUDA is not available; training on CPU", stacklevel=2)
    return torch.device("cpu")


def placement(device: torch.device) -> dict[str, str]:
    """Where this trial runs: Ray node, device, the GPUs Ray assigned. Reported with every result; the driver tags
    the trial's MLflow run with it."""
    import ray

    if not ray.is_initialized():
        return {"device": str(device)}
    gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids())
    return {"node_id": ray.get_runtime_context().get_node_id(), "device": str(device), "gpu_ids": gpu_ids}


def resolve_precision(precision: str, device) -> str:
    """The precision a trial really trains in: fp16 needs CUDA (its GradScaler does), so CPU falls back to bf16."""
    if precision == "fp16" and torch.device(device).type != "cuda":
        warnings.warn("train.precision fp16 needs a CUDA device; training in bf16 on CPU", stacklevel=2)
        return "bf16"
    return precision


def autocast(precision: str, device):
    """Mixed precision for forward passes and losses; fp32 is a no-op context."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def make_scaler(precision: str, device) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; every other precision gets a disabled (pass-through) scaler."""
    return torch.amp.GradScaler("cuda", enabled=precision == "fp16" and torch.device(device).type == "cuda")


def step_batches(trial: Trial, n: int) -> tuple[int, int]:
    """(examples per optimizer step, examples per micro-batch): k = grad_accum_steps micro-batches make one step.

    `batch_size` is the micro-batch, as in most large-model recipes, so the effective batch is batch_size·k;
    with full-batch `gd` the whole training set is one step, cut into k micro-batches to bound memory.
    """
    k = trial.train.grad_accum_steps
    step = n if OPTIMIZERS[trial.train.optimizer].full_batch else trial.train.batch_size * k
    return step, math.ceil(step / k)


def accumulate_gradients(
    model, data: Datasets, idx: torch.Tensor, micro: int, trial: Trial, device, scaler, precision: str
) -> float:
    """Backpropagate one optimizer step's examples in micro-batches; returns the step's loss.

    Each micro-batch's mean loss is weighted by its share of the step's examples, so the summed gradient equals
    that of one batch holding all of them. The L2 penalty is added once per step, over the step's size.
    """
    total = 0.0
    for start in range(0, len(idx), micro):
        part = idx[start : start + micro]
        x, y = data.train_x[part].to(device), data.train_y[part].to(device)
        with autocast(precision, device):
            loss = trial.experiment.task.loss(model(x), y, trial.train.label_smoothing) * (len(part) / len(idx))
        if start == 0:
            loss = loss + l2_penalty(model, trial.train.l2, len(idx))
        scaler.scale(loss).backward()
        total += loss.item()
    return total


def train_epoch(model, data: Datasets, optimizer, scheduler, trial: Trial, gen, device, scaler=None) -> float:
    """One pass over the training set: one optimizer and LR-schedule step per `step_batches` examples."""
    model.train()
    precision = resolve_precision(trial.train.precision, device)
    scaler = make_scaler(precision, device) if scaler is None else scaler
    n = len(data.train_y)
    step, micro = step_batches(trial, n)
    order = torch.randperm(n, generator=gen)
    total = 0.0
    for start in range(0, n, step):
        idx = order[start : start + step]
        optimizer.zero_grad(set_to_none=True)
        total += accumulate_gradients(model, data, idx, micro, trial, device, scaler, precision) * len(idx)
        if trial.train.grad_clip_norm is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), trial.train.grad_clip_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
    return total / n


@torch.no_grad()
def evaluate(model, data: Datasets, trial: Trial, device) -> dict[str, float]:
    model.eval()
    outputs = []
    with autocast(resolve_precision(trial.train.precision, device), device):
        for i in range(0, len(data.val_y), EVAL_BATCH):
            outputs.append(model(data.val_x[i : i + EVAL_BATCH].to(device)).float().cpu())
    return trial.experiment.task.metrics(torch.cat(outputs), data.val_y)


def steps_per_epoch(trial: Trial, n_train: int) -> int:
    """Optimizer steps per epoch: the LR schedule advances once per step, not per micro-batch."""
    return math.ceil(n_train / step_batches(trial, n_train)[0])


def save_checkpoint(path: str, model, optimizer, scheduler, epoch: int, gen: torch.Generator, scaler=None) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "epoch": epoch,
            "torch_rng": torch.get_rng_state(),
            "shuffle_rng": gen.get_state(),
        },
        os.path.join(path, CHECKPOINT_FILE),
    )


def restore_checkpoint(checkpoint, model, optimizer, scheduler, gen: torch.Generator, scaler=None) -> int:
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
    if scaler is not None and state.get("scaler"):  # the loss scale fp16 training had found
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    gen.set_state(state["shuffle_rng"])
    return state["epoch"]


def finite_metrics(metrics: dict[str, float], objective: Objective) -> dict[str, float]:
    """Flag a divergence (any non-finite value): the objective becomes the worst finite value, for the searcher and
    the scheduler; the other metrics keep their true non-finite values."""
    if all(math.isfinite(v) for v in metrics.values()):
        return metrics
    return {**metrics, objective.metric: objective.worst, "diverged": 1.0}


@dataclass
class Training:
    """A trial's live training objects: what the one epoch loop (`run_epochs`) drives, in one process or in each
    DDP worker, and what `validate --plan --calibrate` times an epoch with (plan.py).

    Args:
        model: the module whose state is checkpointed.
        net: what forward passes go through: the model itself, or its DistributedDataParallel wrapper.
        scaler: fp16's loss scaler (a disabled pass-through otherwise), kept across epochs and in checkpoints.
        gen: the generator that shuffles the training set.
    """

    trial: Trial
    data: Datasets
    device: Any
    model: Any
    net: Any
    optimizer: Any
    scheduler: Any
    scaler: Any
    gen: torch.Generator


def build_training(trial: Trial, data: Datasets, device, wrap=None, train_size: int | None = None, rank: int = 0):
    """A fresh trial's `Training`, seeded by the trial. `wrap` turns the model into what forward passes use (DDP:
    `ray.train.torch.prepare_model`, which moves it to the device itself); `train_size` is the examples one
    process trains on per epoch (a DDP shard), which sets the LR schedule's steps; `rank` offsets the shuffle."""
    torch.manual_seed(trial.seed)
    gen = torch.Generator().manual_seed(trial.seed + rank)
    with experiment_code(trial.experiment):
        model = trial.experiment.build_model(trial.model, data.info)
    net = wrap(model) if wrap is not None else model.to(device)
    # built after the model is on its device, so the optimizer's (restored) state lives beside the parameters
    optimizer = build_optimizer(model, trial.train)
    steps = steps_per_epoch(trial, train_size if train_size is not None else len(data.train_y))
    scheduler = build_scheduler(optimizer, trial.train, steps)
    scaler = make_scaler(trial.train.precision, device)
    return Training(trial, data, device, model, net, optimizer, scheduler, scaler, gen)


def one_epoch(training: Training, epoch: int, train_data: Datasets | None = None) -> dict[str, float]:
    """Train one epoch (on `train_data`, a DDP shard, or the whole training set) and evaluate on the whole
    validation set: the epoch's metrics, a diverged objective replaced by its finite stand-in (`finite_metrics`)."""
    t = training
    with experiment_code(t.trial.experiment):
        loss = train_epoch(t.net, train_data or t.data, t.optimizer, t.scheduler, t.trial, t.gen, t.device, t.scaler)
        metrics = {"epoch": epoch, "train_loss": loss, **evaluate(t.net, t.data, t.trial, t.device)}
    return finite_metrics({**metrics, "lr": t.optimizer.param_groups[0]["lr"]}, t.trial.objective)


def run_epochs(training: Training, start: int, report, shard=None, writes_checkpoints: bool = True) -> None:
    """The one epoch loop of every torch trial, single-process or DDP: epochs `start + 1 ..`, each reported with
    `report(metrics, checkpoint_dir_or_None)`; a diverged trial ends after reporting it.

    A checkpoint every `checkpoint_every` epochs (to resume), at the last, at a divergence, and at each new best of
    this trial: the sweep publishes the best epoch's weights, so they must exist whatever checkpoint_every says. In
    DDP every rank reports (Ray Train's report is collective) and decides alike, but only the rank that
    `writes_checkpoints` (rank 0) writes one. `shard(epoch)` gives a DDP worker its part of the training set.
    """
    trial, objective, best = training.trial, training.trial.objective, None
    for epoch in range(start + 1, trial.train.epochs + 1):
        metrics = one_epoch(training, epoch, shard(epoch) if shard is not None else None)
        diverged = "diverged" in metrics
        improved = not diverged and objective.better(metrics.get(trial.metric), best)
        best = metrics[trial.metric] if improved else best
        if epoch % trial.checkpoint_every and epoch != trial.train.epochs and not diverged and not improved:
            report(metrics, None)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            if writes_checkpoints:
                t = training
                save_checkpoint(tmp, t.model, t.optimizer, t.scheduler, epoch, t.gen, t.scaler)
            report(metrics, tmp if writes_checkpoints else None)
        if diverged:
            return


def resume(training: Training, checkpoint) -> int:
    """Epochs already trained: 0, or the restored checkpoint's (model, optimizer, schedule, scaler, RNG states)."""
    if checkpoint is None:
        return 0
    t = training
    return restore_checkpoint(checkpoint, t.model, t.optimizer, t.scheduler, t.gen, t.scaler)


def train_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: train one trial epoch by epoch, reporting each epoch."""
    from ray import tune

    # One INFO line per checkpoint per epoch drowns the sweep's progress lines.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    trial = Trial.from_config(config)
    resources = granted_resources()
    torch.set_num_threads(max(1, int(resources.get("CPU", 1))))
    device = pick_device(resources.get("GPU", 0.0))
    trial.train = trial.train.model_copy(update={"precision": resolve_precision(trial.train.precision, device)})
    with experiment_code(trial.experiment):
        data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.split_seed)
    where = placement(device)
    training = build_training(trial, data, device)
    start = resume(training, tune.get_checkpoint())

    def report(metrics: dict, checkpoint_dir: str | None) -> None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, **where}, checkpoint=checkpoint)

    run_epochs(training, start, report)
