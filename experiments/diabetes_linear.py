"""Regression, the tuning guide's own example: a linear model h(x) = θ₀ + θᵀx trained by gradient descent on

    J(θ) = (1/2m)·Σ(h(x) − y)² + (λ/2m)·Σθ²

— the shared `regression` task supplies the first term, `train.l2` (λ) the second, `train.optimizer: gd` full-batch
steps. With those settings the minimiser is scikit-learn's `Ridge(alpha=λ)` (tests/unit/test_ridge_equivalence.py).

Data: scikit-learn's bundled `diabetes` (442 patients, 10 features, disease progression after one year), or
`path`: a CSV with a header whose last column is the target. Features are standardised with training statistics
so that one learning rate suits every weight and gradient descent converges in a few hundred steps; the target
stays in its own units, so `val_rmse` reads as progression points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raytune_suite.data import split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_rmse"
MODE = "min"
TASK = "regression"


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="CSV with a header, features then the target column")
    val_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation")
    subset: int | None = Field(None, ge=20, description="use only the first N rows (smoke tests)")


class ModelConfig(BaseModel):
    """The guide's model has nothing to choose: h(x) = θ₀ + θᵀx."""

    model_config = ConfigDict(extra="forbid")


def _read_table(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.path is None:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True, scaled=False)
        return x, y
    import pandas as pd

    table = pd.read_csv(cfg.path).to_numpy(dtype=np.float64)
    return table[:, :-1], table[:, -1]


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    x, y = _read_table(cfg)
    if cfg.subset:
        x, y = x[: cfg.subset], y[: cfg.subset]
    train, val = split_indices(y, cfg.val_size, seed, stratify=False)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = torch.from_numpy((x - mean) / np.where(std > 0, std, 1.0)).float()
    y = torch.from_numpy(y).float()
    return Datasets(x[train], y[train], x[val], y[val], info={"features": x.shape[1]})


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    return nn.Linear(info["features"], 1)
