"""Recommender systems: matrix factorisation with biases on MovieLens-100K ratings.

    r̂(u, i) = μ + b_u + b_i + p_uᵀ q_i

Embeddings are 2-D parameters, so `train.l2` (the guide's (λ/2m)·Σθ², per mini-batch) and `train.weight_decay`
both regularise them; with ~100 ratings per user and thousands of free parameters per 100 ratings, that penalty
decides the validation RMSE — the classic case for tuning it.

Data, all offline: MovieLens-100K as the `recbole` wheel ships it (`dataset_example/ml-100k/ml-100k.inter`: 943
users, 1,682 movies, 100,000 ratings 1–5). It is read in place, never copied: MovieLens may not be redistributed.
`path` takes the same tab-separated atomic file (recbole's `.inter` format, header `user_id:token item_id:token
rating:float ...`) of a larger MovieLens, or GroupLens' headerless `u.data` (user, item, rating, timestamp).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raytune_suite.data import package_file, split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_rmse"
MODE = "min"
TASK = "regression"

INSTALL = "pip install --no-deps recbole==1.2.1"


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="tab-separated ratings: recbole .inter (with header) or u.data")
    val_size: float = Field(0.2, gt=0, lt=1, description="fraction of ratings held out, uniformly at random")
    subset: int | None = Field(None, ge=20, description="use only the first N ratings (smoke tests)")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dim: int = Field(32, ge=1, le=512, description="latent factors per user and per item")
    init_std: float = Field(0.01, gt=0, le=1, description="std of the initial factors")


def _read_ratings(cfg: DataConfig) -> np.ndarray:
    """(user, item, rating) rows in file order."""
    import pandas as pd

    path = cfg.path or package_file("recbole", "dataset_example/ml-100k/ml-100k.inter", INSTALL)
    with open(path) as f:
        has_header = ":" in f.readline()
    table = pd.read_csv(path, sep="\t", header=0 if has_header else None, usecols=[0, 1, 2])
    return table.to_numpy()


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    ratings = _read_ratings(cfg)
    if cfg.subset:
        ratings = ratings[: cfg.subset]
    # Dense ids over every user and item in the file: a validation user unseen in training keeps only biases ≈ 0.
    users, user_ids = np.unique(ratings[:, 0], return_inverse=True)
    items, item_ids = np.unique(ratings[:, 1], return_inverse=True)
    x = torch.from_numpy(np.stack([user_ids, item_ids], axis=1).astype(np.int64))
    y = torch.from_numpy(ratings[:, 2].astype(np.float32))
    train, val = split_indices(ratings[:, 2], cfg.val_size, seed, stratify=False)
    info = {"users": len(users), "items": len(items), "mean_rating": float(y[train].mean())}
    return Datasets(x[train], y[train], x[val], y[val], info=info)


class BiasedMF(nn.Module):
    """μ + b_u + b_i + p_uᵀq_i; μ starts at the training mean so the factors only learn what the mean misses."""

    def __init__(self, users: int, items: int, dim: int, init_std: float, mean_rating: float):
        super().__init__()
        self.user = nn.Embedding(users, dim)
        self.item = nn.Embedding(items, dim)
        self.user_bias = nn.Embedding(users, 1)
        self.item_bias = nn.Embedding(items, 1)
        self.mean = nn.Parameter(torch.tensor(mean_rating))
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=init_std)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        u, i = pairs[:, 0], pairs[:, 1]
        dot = (self.user(u) * self.item(i)).sum(dim=1)
        return self.mean + self.user_bias(u).squeeze(1) + self.item_bias(i).squeeze(1) + dot


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    return BiasedMF(info["users"], info["items"], cfg.dim, cfg.init_std, info["mean_rating"])
