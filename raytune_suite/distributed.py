"""Multi-worker trials (`tune.workers_per_trial: N > 1`): data-parallel training with Ray Train inside a Tune trial.

Ray 2.60 deprecates passing a trainer to `Tuner`; the supported pattern (Train V2) is a Tune function trainable
that builds a `TorchTrainer` and calls `fit()`. So each trial is:

- an outer Tune trial (`train_distributed`) that reserves almost nothing (`OUTER_CPU`), so a trial never holds the
  CPUs its own training workers need: the workers' resources are one placement group, granted all at once or not
  at all, and the sweep's concurrency counts a trial as N workers (tuner.py), so trials queue instead of deadlock;
- N Ray Train workers (`train_worker`), each `tune.resources` big, running DistributedDataParallel: `gloo` on CPU,
  `nccl` on GPU, each epoch over its `DistributedSampler` shard (per-worker batch = `train.batch_size`, so the
  global batch is N times that), every worker evaluating the full validation set;
- rank 0's metrics reach Tune each epoch through `TuneReportCallback`; rank 0 writes the checkpoint into Ray
  Train's storage (its path arrives in Tune as `checkpoint_path`). Failed workers are retried from it by Ray Train.

Needs Ray's dashboard: without it a finished trial's worker placement group is never removed and the next trial
waits for ever (measured on Ray 2.60), so `sweep.connect_ray` starts local Ray with the dashboard for these sweeps.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import torch

from raytune_suite.experiments import Datasets
from raytune_suite.trainable import (
    Trial,
    cached_data,
    evaluate,
    finite_metrics,
    placement,
    restore_checkpoint,
    save_checkpoint,
    train_epoch,
)

# The outer trial only waits on its trainer; Ray needs a non-zero request to schedule it.
OUTER_CPU = 0.01


def train_distributed(config: dict[str, Any]) -> None:
    """Tune function trainable: one trial = one `TorchTrainer.fit()` over `workers_per_trial` workers."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    suite = config["suite"]
    use_gpu = suite["worker_resources"]["gpu"] > 0
    context = tune.get_context()
    trainer = TorchTrainer(
        train_worker,
        train_loop_config=config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=suite["workers_per_trial"],
            use_gpu=use_gpu,
            resources_per_worker={"CPU": suite["worker_resources"]["cpu"], "GPU": suite["worker_resources"]["gpu"]},
        ),
        run_config=ray.train.RunConfig(
            name=f"train_{context.get_trial_id()}",
            storage_path=os.path.dirname(context.get_trial_dir()),
            callbacks=[TuneReportCallback()],
            failure_config=ray.train.FailureConfig(max_failures=suite.get("max_failures", 0)),
        ),
    )
    trainer.fit()


def shard(data: Datasets, sampler) -> Datasets:
    """This worker's part of the training set for the sampler's current epoch; validation stays whole."""
    idx = torch.tensor(list(sampler), dtype=torch.long)
    return Datasets(data.train_x[idx], data.train_y[idx], data.val_x, data.val_y, data.info)


def train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the trainable's loop over a DistributedSampler shard of a DDP-wrapped model."""
    import ray.train
    import ray.train.torch
    from torch.utils.data import DistributedSampler

    from raytune_suite.optim import build_optimizer
    from raytune_suite.schedules import build_scheduler
    from raytune_suite.trainable import steps_per_epoch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    trial = Trial.from_config(config)
    device = ray.train.torch.get_device()
    data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.split_seed)
    sampler = DistributedSampler(range(len(data.train_y)), num_replicas=world, rank=rank, seed=trial.seed)

    torch.manual_seed(trial.seed)
    gen = torch.Generator().manual_seed(trial.seed + rank)
    model = trial.experiment.build_model(trial.model, data.info)
    # Moves the model to the device in place and wraps it in DistributedDataParallel; the optimizer is built after,
    # so its (restored) state lives on the same device as the parameters.
    ddp = ray.train.torch.prepare_model(model)
    optimizer = build_optimizer(model, trial.train)
    scheduler = build_scheduler(optimizer, trial.train, steps_per_epoch(trial, math.ceil(len(data.train_y) / world)))
    start = 0
    if (checkpoint := ray.train.get_checkpoint()) is not None:
        start = restore_checkpoint(checkpoint, model, optimizer, scheduler, gen)
    where = {**placement(device), "world_size": str(world)}

    for epoch in range(start + 1, trial.train.epochs + 1):
        sampler.set_epoch(epoch)
        train_loss = train_epoch(ddp, shard(data, sampler), optimizer, scheduler, trial, gen, device)
        metrics = {"epoch": epoch, "train_loss": train_loss, **evaluate(ddp, data, trial, device)}
        metrics = {**finite_metrics({**metrics, "lr": optimizer.param_groups[0]["lr"]}, trial), **where}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                save_checkpoint(tmp, model, optimizer, scheduler, epoch, gen)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)
        if "diverged" in metrics:
            return
