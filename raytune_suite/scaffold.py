"""`raytune-suite new NAME`: a working experiment to start from, one template per task.

Each template is a `NAME.py` (a small model on data that ships with scikit-learn) and a `NAME.yaml` (a space
with an optimizer choice, a log-uniform LR, the schedule and weight decay; HyperOpt + ASHA; a budget of about a
minute on 2 CPUs). Both pass `validate` and run as written (`tests/integration/test_scaffold.py`). The protocol the
module follows: docs/writing-an-experiment.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from raytune_suite.errors import ConfigError

_CLASSIFICATION_PY = '''\
"""${name}: a small MLP on scikit-learn's bundled digits (1,797 8×8 images of the digits 0-9).

Written by `raytune-suite new ${name}`. Make it yours: `load_data` returns your tensors, `build_model` your
nn.Module; the protocol is docs/writing-an-experiment.md, every YAML key docs/config-reference.md.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raytune_suite.data import split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_accuracy"  # what the sweep optimises unless tune.metric says otherwise ...
MODE = "max"  # ... and in which direction
TASK = "classification"  # cross-entropy loss; reports val_loss and val_accuracy


class DataConfig(BaseModel):
    """The YAML's `data:` section."""

    model_config = ConfigDict(extra="forbid")
    val_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation")


class ModelConfig(BaseModel):
    """The YAML's `model:` section; `space.model` may tune any of these."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(64, ge=1, description="units per hidden layer")
    layers: int = Field(1, ge=1, le=4, description="hidden layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout after each hidden layer")


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    """Called once per worker process with tune.split_seed, so every trial sees the same split."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    train, val = split_indices(y, cfg.val_size, seed)  # stratified by label
    x = torch.from_numpy(x / 16.0).float()  # pixels 0..16 -> 0..1
    y = torch.from_numpy(y).long()  # classification labels: int64 class ids
    return Datasets(x[train], y[train], x[val], y[val], info={"features": x.shape[1], "classes": 10})


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    """Called per trial with that trial's ModelConfig and the info load_data returned."""
    layers: list[nn.Module] = []
    width = info["features"]
    for _ in range(cfg.layers):
        layers += [nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout)]
        width = cfg.hidden
    layers.append(nn.Linear(width, info["classes"]))  # one logit per class
    return nn.Sequential(*layers)
'''

_CLASSIFICATION_YAML = """\
# ${name}: written by `raytune-suite new ${name}`; every key: docs/config-reference.md (or validate --explain).
# A small MLP on scikit-learn digits; HyperOpt (TPE) proposes configs, ASHA stops weak ones after 2 and 6 epochs.
experiment: ${name}.py
description: MLP on scikit-learn digits (1,437 train / 360 validation), HyperOpt + ASHA
data:
  val_size: 0.2
model:
  hidden: 64
  layers: 1
  dropout: 0.1
train:
  epochs: 10
  batch_size: 64
  optimizer: adamw
  lr: 3.0e-3
  weight_decay: 1.0e-4
  schedule: cosine
space:
  train:
    optimizer: {type: choice, values: [adamw, nesterov]}
    momentum: {type: uniform, low: 0.8, high: 0.98, when: {optimizer: [nesterov]}}  # only nesterov reads it
    lr: {type: loguniform, low: 1.0e-3, high: 3.0e-2}
    schedule: {type: choice, values: [constant, cosine]}
    weight_decay: {type: loguniform, low: 1.0e-5, high: 1.0e-2}
  model:
    hidden: {type: choice, values: [32, 64, 128]}
    dropout: {type: uniform, low: 0.0, high: 0.3}
tune:
  search: hyperopt
  scheduler: asha
  num_samples: 12
  asha: {grace_period: 2, reduction_factor: 3}
  resources: {cpu: 1, gpu: 0}
  seed: 0
"""

_REGRESSION_PY = '''\
"""${name}: a small MLP on scikit-learn's bundled diabetes data (442 patients, 10 features, progression after a year).

Written by `raytune-suite new ${name}`. Make it yours: `load_data` returns your tensors, `build_model` your
nn.Module; the protocol is docs/writing-an-experiment.md, every YAML key docs/config-reference.md.
Features and target are standardised with training statistics, so val_rmse reads in standard deviations of the
target (multiply by info["target_std"] for its own units).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raytune_suite.data import split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_rmse"  # what the sweep optimises unless tune.metric says otherwise ...
MODE = "min"  # ... and in which direction
TASK = "regression"  # ½·MSE loss; reports val_loss and val_rmse


class DataConfig(BaseModel):
    """The YAML's `data:` section."""

    model_config = ConfigDict(extra="forbid")
    val_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation")


class ModelConfig(BaseModel):
    """The YAML's `model:` section; `space.model` may tune any of these."""

    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(32, ge=1, description="units per hidden layer")
    layers: int = Field(1, ge=1, le=4, description="hidden layers")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden layer")


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    """Called once per worker process with tune.split_seed, so every trial sees the same split."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, scaled=False)
    train, val = split_indices(y, cfg.val_size, seed, stratify=False)  # a continuous target: no strata
    x = (x - x[train].mean(axis=0)) / x[train].std(axis=0)
    mean, std = y[train].mean(), y[train].std()
    x = torch.from_numpy(x).float()
    y = torch.from_numpy((y - mean) / std).float()  # regression targets: float32, shape (n,)
    info = {"features": x.shape[1], "target_mean": float(mean), "target_std": float(std)}
    return Datasets(x[train], y[train], x[val], y[val], info=info)


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    """Called per trial with that trial's ModelConfig and the info load_data returned."""
    layers: list[nn.Module] = []
    width = info["features"]
    for _ in range(cfg.layers):
        layers += [nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout)]
        width = cfg.hidden
    layers.append(nn.Linear(width, 1))  # one output; the task reshapes it to the target's shape
    return nn.Sequential(*layers)
'''

_REGRESSION_YAML = """\
# ${name}: written by `raytune-suite new ${name}`; every key: docs/config-reference.md (or validate --explain).
# A small MLP on scikit-learn diabetes; HyperOpt (TPE) proposes configs, ASHA stops weak ones after 2, 6 and 18 epochs.
experiment: ${name}.py
description: MLP on scikit-learn diabetes (353 train / 89 validation), HyperOpt + ASHA
data:
  val_size: 0.2
model:
  hidden: 32
  layers: 1
  dropout: 0.0
train:
  epochs: 30
  batch_size: 32
  optimizer: adamw
  lr: 3.0e-3
  weight_decay: 1.0e-4
  schedule: cosine
space:
  train:
    optimizer: {type: choice, values: [adamw, nesterov]}
    momentum: {type: uniform, low: 0.8, high: 0.98, when: {optimizer: [nesterov]}}  # only nesterov reads it
    lr: {type: loguniform, low: 1.0e-3, high: 3.0e-2}
    schedule: {type: choice, values: [constant, cosine]}
    weight_decay: {type: loguniform, low: 1.0e-5, high: 1.0e-1}
  model:
    hidden: {type: choice, values: [16, 32, 64]}
tune:
  search: hyperopt
  scheduler: asha
  num_samples: 12
  asha: {grace_period: 2, reduction_factor: 3}
  resources: {cpu: 1, gpu: 0}
  seed: 0
"""


@dataclass(frozen=True)
class Scaffold:
    """The two files `new` writes for one task."""

    module: str
    config: str
    data: str  # what the model learns from, for the CLI's one-line summary


TEMPLATES: dict[str, Scaffold] = {
    "classification": Scaffold(_CLASSIFICATION_PY, _CLASSIFICATION_YAML, "MLP on scikit-learn digits"),
    "regression": Scaffold(_REGRESSION_PY, _REGRESSION_YAML, "MLP on scikit-learn diabetes"),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_experiment(name: str, task: str = "classification", folder: str | Path = ".") -> tuple[Path, Path]:
    """Write `folder/name.py` and `folder/name.yaml` from the task's template; never overwrites a file."""
    if not _NAME.match(name):
        raise ConfigError(f"new {name}: not a Python identifier; use letters, digits and _, e.g. my_model")
    if task not in TEMPLATES:
        raise ConfigError(f"new --task {task}: no template; choose one of: {', '.join(TEMPLATES)}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"new --dir {folder}: not a folder; pass a folder (it is created if missing)")
    module, config = folder / f"{name}.py", folder / f"{name}.yaml"
    for path in (module, config):
        if path.exists():
            raise ConfigError(f"new: {path} already exists; pick another NAME or --dir (nothing was written)")
    folder.mkdir(parents=True, exist_ok=True)
    template = TEMPLATES[task]
    module.write_text(Template(template.module).substitute(name=name), encoding="utf-8")
    config.write_text(Template(template.config).substitute(name=name), encoding="utf-8")
    return module, config
