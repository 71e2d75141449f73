"""The suite's trainable versus a plain PyTorch loop: what the shared training loop costs per epoch.

Both train the `mnist_cnn` experiment's default model on its default data (MNIST-5k) with the same optimizer
(AdamW, the config's lr and weight decay, the same warm-up + cosine schedule stepped every batch), batch size and
epochs, on the same number of torch threads, in this process, without Ray. The suite's side is
`raytune_suite.train.trainable.train_trial` itself, called directly (outside a Tune session `tune.report` is a no-
op), so it pays everything a trial pays: typed config, the decay/no-decay parameter groups, mixed-precision and
gradient accumulation plumbing, metrics, the per-epoch checkpoint. The plain loop is what a user would write by
hand, with a validation pass per epoch and no checkpoint. The two alternate, `--repeats` times each; medians are
compared.

    python benchmarks/trainable_overhead.py [--epochs 3] [--repeats 3] [--threads N]

Prints seconds per run for each and the ratio suite / plain (goal: at most 1.05).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from raytune_suite.config import load_config
from raytune_suite.run.tuner import param_space
from raytune_suite.train.trainable import cached_data, train_trial

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "mnist_cnn.yaml"


def suite_config(epochs: int) -> dict:
    cfg = load_config(CONFIG, [f"train.epochs={epochs}"])
    config = param_space(cfg)
    for section, values in cfg.fixed_sections().items():
        config[section] = values
    return config


def run_suite(config: dict) -> float:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "report is meant to be called inside a Tuner": it is not, here
        train_trial(config)
    return time.perf_counter() - started


def run_plain(config: dict) -> float:
    """A hand-written loop over the same data, model, optimizer, schedule and batch size."""
    from raytune_suite.experiments import load_experiment

    experiment = load_experiment(config["suite"]["experiment"])
    data_cfg = experiment.DataConfig.model_validate(config["data"])
    data = cached_data(experiment.ref, data_cfg.model_dump_json(), config["suite"]["seed"])
    train = config["train"]
    started = time.perf_counter()
    torch.manual_seed(config["suite"]["seed"])
    model = experiment.build_model(experiment.ModelConfig.model_validate(config["model"]), data.info)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
    n, batch = len(data.train_y), train["batch_size"]
    steps = math.ceil(n / batch)
    warmup = train["warmup_epochs"] * steps
    total = train["epochs"] * steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    for _ in range(train["epochs"]):
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(data.val_x).argmax(1) == data.val_y).float().mean().item()
    _ = accuracy
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    config = suite_config(args.epochs)
    run_plain({**config, "train": {**config["train"], "epochs": 1}})  # load the data and warm up kernels
    suite, plain = [], []
    for _ in range(args.repeats):
        torch.set_num_threads(args.threads)  # the trainable sets it to the trial's CPUs; the same for both
        suite.append(run_suite(config))
        torch.set_num_threads(args.threads)
        plain.append(run_plain(config))
    s, p = statistics.median(suite), statistics.median(plain)
    print(f"mnist_cnn, {args.epochs} epochs, {args.threads} torch thread(s), {args.repeats} runs each (median):")
    print(f"  suite trainable  {s:6.2f} s   runs: {', '.join(f'{v:.2f}' for v in suite)}")
    print(f"  plain PyTorch    {p:6.2f} s   runs: {', '.join(f'{v:.2f}' for v in plain)}")
    print(f"  ratio suite/plain {s / p:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
