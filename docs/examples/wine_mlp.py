"""Wine cultivars from 13 chemical measurements: a small MLP on scikit-learn's bundled `wine` data (178 wines).

The worked example of docs/writing-an-experiment.md; tests/integration/test_writing_an_experiment.py runs it.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raytune_suite.data import split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_accuracy"
MODE = "max"
TASK = "classification"


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in the YAML's data: section is an error, not ignored
    val_size: float = Field(0.25, gt=0, lt=1, description="fraction held out for validation")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(32, ge=1, description="units of the hidden layer")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout after the hidden layer")


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    train, val = split_indices(y, cfg.val_size, seed)  # stratified: each cultivar in both splits
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)  # training statistics only
    x = torch.from_numpy((x - mean) / std).float()
    y = torch.from_numpy(y).long()  # int64 class ids 0, 1, 2
    info = {"features": x.shape[1], "classes": int(y.max()) + 1}
    return Datasets(x[train], y[train], x[val], y[val], info=info)


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    return nn.Sequential(
        nn.Linear(info["features"], cfg.hidden),
        nn.ReLU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.hidden, info["classes"]),  # logits, one per class
    )
