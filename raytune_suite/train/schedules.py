"""Learning-rate schedules as pure functions of training time.

Every schedule maps `t` (the epoch, fractional within an epoch) to a factor of the base learning rate.
The trainable evaluates it at every optimizer step through `torch.optim.lr_scheduler.LambdaLR`, so a schedule
is one plain function here plus one line in `SCHEDULES`; its keyword arguments are filled from `TrainConfig`
by name (see `schedule_kwargs`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch


class TrainConfig(Protocol):
    """What the schedules read of a trial's `train` section (config.TrainConfig has it). A protocol, not an import:
    the config validates `train.schedule` against this registry, so the registry does not import the config."""

    schedule: str
    epochs: int
    decay_rate: float
    step_size: float
    gamma: float
    warmup_epochs: float
    min_lr_ratio: float


def constant(t: float) -> float:
    return 1.0


def time_based(t: float, *, decay_rate: float) -> float:
    """lr0 / (1 + k·t): the guide's time-based decay."""
    return 1.0 / (1.0 + decay_rate * t)


def exponential(t: float, *, decay_rate: float) -> float:
    """lr0 · e^(−k·t)."""
    return math.exp(-decay_rate * t)


def step(t: float, *, step_size: float, gamma: float) -> float:
    """lr0 · γ^⌊t / step_size⌋: drop by γ every `step_size` epochs."""
    return gamma ** math.floor(t / step_size)


def cosine(t: float, *, total: float, min_lr_ratio: float) -> float:
    """Half a cosine from lr0 down to lr0·min_lr_ratio at the last epoch."""
    progress = min(t / total, 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(t: float, *, total: float, warmup: float, min_lr_ratio: float) -> float:
    """Linear warm-up over `warmup` epochs, then cosine decay over the rest.

    Warm-up keeps the first, large-gradient steps of adaptive optimizers from blowing up before their
    second-moment estimates settle.
    """
    if warmup > 0 and t < warmup:
        return t / warmup
    return cosine(t - warmup, total=max(total - warmup, 1e-12), min_lr_ratio=min_lr_ratio)


SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": constant,
    "time": time_based,
    "exponential": exponential,
    "step": step,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
}


def schedule_kwargs(name: str, cfg: TrainConfig) -> dict[str, float]:
    """The keyword arguments schedule `name` takes, read from the trial's config."""
    available = {
        "decay_rate": cfg.decay_rate,
        "step_size": cfg.step_size,
        "gamma": cfg.gamma,
        "total": float(cfg.epochs),
        "warmup": cfg.warmup_epochs,
        "min_lr_ratio": cfg.min_lr_ratio,
    }
    wanted = inspect.signature(SCHEDULES[name]).parameters
    return {k: v for k, v in available.items() if k in wanted}


def lr_factor_fn(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """factor(optimizer_step) for LambdaLR: the schedule evaluated at fractional epoch step/steps_per_epoch."""
    fn, kwargs = SCHEDULES[cfg.schedule], schedule_kwargs(cfg.schedule, cfg)
    return lambda s: fn(s / steps_per_epoch, **kwargs)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    import torch  # here, not with the registry: validating a config must not import torch (optim.py says why)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(cfg, steps_per_epoch))
