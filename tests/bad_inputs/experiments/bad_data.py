"""A small classifier whose load_data and build_model make a new user's mistakes, one per `data.mistake` and
`model.*` value: the smoke check names load_data (or the user's own line) and the fix, never a line inside torch."""

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from raytune_suite.experiments import Datasets

METRIC, MODE, TASK = "val_accuracy", "max", "classification"
Mistake = Literal[
    "none", "numpy", "int32_labels", "float64_features", "tuple", "one_hot_labels", "negative_labels", "fewer_labels"
]


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mistake: Mistake = "none"


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: int = 4  # the data has 4
    outputs: int = 2  # the labels are 0-1
    forward_bug: bool = False


def load_data(cfg: DataConfig, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 4))  # float64, as numpy makes it
    y = (x[:, 0] > 0).astype(np.int64)
    if cfg.mistake == "numpy":
        return Datasets(x[:30], y[:30], x[30:], y[30:])
    if cfg.mistake == "tuple":
        return x, y
    tx, ty = torch.from_numpy(x).float(), torch.from_numpy(y)
    if cfg.mistake == "int32_labels":
        ty = ty.int()
    if cfg.mistake == "float64_features":
        tx = tx.double()
    if cfg.mistake == "one_hot_labels":
        ty = nn.functional.one_hot(ty).float()
    if cfg.mistake == "negative_labels":
        ty = ty - 1
    if cfg.mistake == "fewer_labels":
        return Datasets(tx[:30], ty[:29], tx[30:], ty[30:])
    return Datasets(tx[:30], ty[:30], tx[30:], ty[30:])


class Folded(nn.Module):
    def __init__(self, outputs: int):
        super().__init__()
        self.layer = nn.Linear(3, outputs)

    def forward(self, x):
        return self.layer(x.view(-1, 3))  # the bug: 4 features do not fold into rows of 3


def build_model(cfg: ModelConfig, info: dict) -> nn.Module:
    if cfg.forward_bug:
        return Folded(cfg.outputs)
    return nn.Sequential(nn.Linear(cfg.features, cfg.outputs))
