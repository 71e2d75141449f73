"""Optimizer registry: one entry per optimizer the tuning guide names, built after the model exists.

Add an optimizer by adding one `OptimizerSpec` to `OPTIMIZERS`. Each factory receives the parameter groups
(decay / no-decay, see `param_groups`) and the trial's `TrainConfig`, and returns a torch optimizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from raytune_suite.config import TrainConfig

ParamGroups = list[dict[str, Any]]


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one optimizer.

    Args:
        build: factory(param_groups, train_config) -> torch optimizer.
        full_batch: every step sees the whole training set (plain gradient descent).
        summary: what the optimizer is, in a few words (for readers of this registry).
        reads: the optimizer-specific `train` keys `build` reads (besides lr and weight_decay, which every
            optimizer reads); the config reference and the ignored-key warning are generated from it.
    """

    build: Callable[[ParamGroups, TrainConfig], torch.optim.Optimizer]
    full_batch: bool = False
    summary: str = ""
    reads: tuple[str, ...] = ()


def _sgd(momentum: bool, nesterov: bool = False):
    def build(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.Optimizer:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum if momentum else 0.0, nesterov=nesterov)

    return build


def _rmsprop(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.Optimizer:
    # TrainConfig's momentum default (0.9) is the one heavy-ball SGD wants; RMSprop keeps PyTorch's 0 unless the
    # config sets train.momentum (or tunes it), so `optimizer: rmsprop` trains the RMSprop every paper means.
    momentum = cfg.momentum if "momentum" in cfg.model_fields_set else 0.0
    return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.rmsprop_alpha, momentum=momentum)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "gd": OptimizerSpec(_sgd(momentum=False), full_batch=True, summary="batch gradient descent"),
    "sgd": OptimizerSpec(_sgd(momentum=False), summary="mini-batch SGD"),
    "momentum": OptimizerSpec(_sgd(momentum=True), summary="SGD with heavy-ball momentum", reads=("momentum",)),
    "nesterov": OptimizerSpec(
        _sgd(momentum=True, nesterov=True), summary="SGD with Nesterov momentum", reads=("momentum",)
    ),
    "adam": OptimizerSpec(
        lambda g, c: torch.optim.Adam(g, lr=c.lr, betas=(c.beta1, c.beta2)), summary="Adam", reads=("beta1", "beta2")
    ),
    "adamw": OptimizerSpec(
        lambda g, c: torch.optim.AdamW(g, lr=c.lr, betas=(c.beta1, c.beta2)),
        summary="Adam with decoupled weight decay",
        reads=("beta1", "beta2"),
    ),
    "rmsprop": OptimizerSpec(_rmsprop, summary="RMSprop", reads=("rmsprop_alpha", "momentum")),
    "adagrad": OptimizerSpec(lambda g, c: torch.optim.Adagrad(g, lr=c.lr), summary="Adagrad"),
}


def param_groups(model: nn.Module, weight_decay: float, decay_norms_and_biases: bool) -> ParamGroups:
    """Split parameters into a decayed group and a no-decay group (biases and norm scales).

    Decaying a bias or a LayerNorm gain pulls it towards zero for no regularising benefit, which is why
    large-model recipes exempt every parameter with fewer than two dimensions.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norms_and_biases:
        return [{"params": params, "weight_decay": weight_decay}]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer that `cfg.optimizer` names, over `model`'s parameter groups."""
    groups = param_groups(model, cfg.weight_decay, cfg.decay_norms_and_biases)
    return OPTIMIZERS[cfg.optimizer].build(groups, cfg)
