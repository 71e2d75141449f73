"""Multi-worker trials (`tune.workers_per_trial: N > 1`): data-parallel training with Ray Train inside a Tune trial.

Ray 2.60 deprecates passing a trainer to `Tuner`; the supported pattern (Train V2) is a Tune function trainable
that builds a `TorchTrainer` and calls `fit()`. So each trial is:

- an outer Tune trial (`train_distributed`) that reserves almost nothing (`OUTER_CPU`), so a trial never holds the
  CPUs its own training workers need: the workers' resources are one placement group, granted all at once or not
  at all, and the sweep's concurrency counts a trial as N workers (tuner.py), so trials queue instead of deadlock;
- N Ray Train workers (`train_worker`), each `tune.resources` big, running DistributedDataParallel: `gloo` on CPU,
  `nccl` on GPU, each epoch over its `DistributedSampler` shard (per-worker batch = `train.batch_size`, so the
  global batch is N times that), every worker evaluating the full validation set;
- every worker runs the trainable's own epoch loop (`trainable.run_epochs`: the same checkpoint policy, fp16 scaler
  and divergence handling); rank 0's metrics reach Tune each epoch through `TuneReportCallback`; rank 0 writes the
  checkpoint into Ray Train's storage (its path arrives in Tune as `checkpoint_path`). Failed workers are retried
  from it by Ray Train, except after an error in the experiment's own code, which would fail the same way again:
  the failing worker leaves a note (`USER_ERROR_FILE`) in the trial's folder before it raises, so Ray Train's
  retries stop at once and the trial ends with that `UserCodeError`, which the sweep does not retry either.

Needs Ray's dashboard: without it a finished trial's worker placement group is never removed and the next trial
waits for ever (measured on Ray 2.60), so `sweep.connect_ray` starts local Ray with the dashboard for these sweeps.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import torch

from raytune_suite.errors import UserCodeError
from raytune_suite.experiments import Datasets
from raytune_suite.train.trainable import Trial, build_training, cached_data, placement, resume, run_epochs

# The outer trial only waits on its trainer; Ray needs a non-zero request to schedule it.
OUTER_CPU = 0.01
# Left in the trial's folder by a worker whose experiment code raised: Ray Train's retries and the trial then stop.
USER_ERROR_FILE = "user_code_error.json"


def train_distributed(config: dict[str, Any]) -> None:
    """Tune function trainable: one trial = one `TorchTrainer.fit()` over `workers_per_trial` workers."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    suite = config["suite"]
    use_gpu = suite["worker_resources"]["gpu"] > 0
    context = tune.get_context()
    note = os.path.join(context.get_trial_dir(), USER_ERROR_FILE)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={**config, "suite": {**suite, "user_error_file": note}},
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
    try:
        trainer.fit()
    except Exception:
        if os.path.exists(note):  # the experiment's own code failed: end with its error, not Ray Train's
            raise read_user_error(note) from None
        raise


def shard(data: Datasets, sampler) -> Datasets:
    """This worker's part of the training set for the sampler's current epoch; validation stays whole."""
    idx = torch.tensor(list(sampler), dtype=torch.long)
    return Datasets(data.train_x[idx], data.train_y[idx], data.val_x, data.val_y, data.info)


def train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the trainable's own epoch loop over a DistributedSampler shard of a DDP-wrapped model."""
    import ray.train
    import ray.train.torch
    from torch.utils.data import DistributedSampler

    note = config["suite"].get("user_error_file")
    if note and os.path.exists(note):
        raise read_user_error(note)  # a retry after the experiment's code failed: stop Ray Train's retries now
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    trial = Trial.from_config(config)
    device = ray.train.torch.get_device()
    try:
        data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.split_seed)
        sampler = DistributedSampler(range(len(data.train_y)), num_replicas=world, rank=rank, seed=trial.seed)
        # prepare_model moves the model to the device in place and wraps it in DistributedDataParallel
        training = build_training(trial, data, device, wrap=ray.train.torch.prepare_model,
                                  train_size=math.ceil(len(data.train_y) / world), rank=rank)  # fmt: skip
        start = resume(training, ray.train.get_checkpoint())
        where = {**placement(device), "world_size": str(world)}

        def report(metrics: dict, checkpoint_dir: str | None) -> None:
            checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
            ray.train.report({**metrics, **where}, checkpoint=checkpoint)

        def epoch_shard(epoch: int) -> Datasets:
            sampler.set_epoch(epoch)
            return shard(data, sampler)

        run_epochs(training, start, report, shard=epoch_shard, writes_checkpoints=rank == 0)
    except UserCodeError as error:
        if note:
            write_user_error(note, error)
        raise


def write_user_error(path: str, error: UserCodeError) -> None:
    """The experiment's error, for the trial (read_user_error) and for a retried worker group."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        json.dump({"args": list(error.args)}, handle)  # as raised: (kind, message, where)
    os.replace(tmp, path)  # whole or absent: two ranks failing at once each write a complete note


def read_user_error(path: str) -> UserCodeError:
    with open(path) as handle:
        note = json.load(handle)
    return UserCodeError(*note["args"])
