"""Optimizer registry: one entry per optimizer the tuning guide names, built after the model exists.

Add an optimizer by adding one `OptimizerSpec` to `OPTIMIZERS`. Each factory receives the parameter groups
(decay / no-decay, see `param_groups`) and the trial's `TrainConfig`, and returns a torch optimizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported when an optimizer is built, not with the registry: validating a config (its `train.optimizer`
# is checked against OPTIMIZERS) must not import torch for an estimator experiment, which never trains with one.

ParamGroups = list[dict[str, Any]]


class TrainConfig(Protocol):
    """What the optimizers read of a trial's `train` section (config.TrainConfig has it). A protocol, not an import:
    the config validates `train.optimizer` against this registry, so the registry does not import the config."""

    optimizer: str
    lr: float
    momentum: float
    beta1: float
    beta2: float
    rmsprop_alpha: float
    weight_decay: float
    decay_norms_and_biases: bool
    model_fields_set: set[str]  # pydantic's: which keys the config set (rmsprop keeps torch's momentum otherwise)


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
        import torch

        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum if momentum else 0.0, nesterov=nesterov)

    return build


def _rmsprop(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.Optimizer:
    # TrainConfig's momentum default (0.9) is the one heavy-ball SGD wants; RMSprop keeps PyTorch's 0 unless the
    # config sets train.momentum (or tunes it), so `optimizer: rmsprop` trains the RMSprop every paper means.
    import torch

    momentum = cfg.momentum if "momentum" in cfg.model_fields_set else 0.0
    return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.rmsprop_alpha, momentum=momentum)


def _adam(decoupled: bool):
    def build(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.Optimizer:
        import torch

        adam = torch.optim.AdamW if decoupled else torch.optim.Adam
        return adam(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))

    return build


def _adagrad(groups: ParamGroups, cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adagrad(groups, lr=cfg.lr)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "gd": OptimizerSpec(_sgd(momentum=False), full_batch=True, summary="batch gradient descent"),
    "sgd": OptimizerSpec(_sgd(momentum=False), summary="mini-batch SGD"),
    "momentum": OptimizerSpec(_sgd(momentum=True), summary="SGD with heavy-ball momentum", reads=("momentum",)),
    "nesterov": OptimizerSpec(
        _sgd(momentum=True, nesterov=True), summary="SGD with Nesterov momentum", reads=("momentum",)
    ),
    "adam": OptimizerSpec(_adam(decoupled=False), summary="Adam", reads=("beta1", "beta2")),
    "adamw": OptimizerSpec(_adam(decoupled=True), summary="Adam with decoupled weight decay", reads=("beta1", "beta2")),
    "rmsprop": OptimizerSpec(_rmsprop, summary="RMSprop", reads=("rmsprop_alpha", "momentum")),
    "adagrad": OptimizerSpec(_adagrad, summary="Adagrad"),
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
