"""The experiment protocol and its loader. The full guide, with a worked example: docs/writing-an-experiment.md.

An experiment is one Python module that defines:

    METRIC = "val_accuracy"           # the metric a sweep optimises by default (one its TASK reports) ...
    MODE = "max"                      # ... and its direction, "min" or "max"
    TASK = "classification"           # a key of TASKS: the training loss and the validation metrics
    class DataConfig(BaseModel): ...  # its `data:` section (extra="forbid" makes typos errors)
    class ModelConfig(BaseModel): ... # its `model:` section
    def load_data(cfg: DataConfig, seed: int) -> Datasets
    def build_model(cfg: ModelConfig, info: dict) -> torch.nn.Module

`TASKS`: `classification` (logits `(n, classes)`, int64 class ids; cross-entropy; reports val_loss, val_accuracy)
and `regression` (`n` predictions, float32 targets; ½·MSE; reports val_loss, val_rmse). `load_data` gets
`tune.split_seed`, the same in every trial, so every trial sees the same split (`raytune_suite.data.split_indices`);
the `info` dict it returns in `Datasets` is what `build_model` receives. `experiment:` in the YAML resolves to a
`.py` file relative to the YAML, a name in `experiments/`, or a dotted module of an installed package.

An **estimator experiment** builds a scikit-learn estimator instead of a torch module: it defines `DataConfig`,
`ModelConfig`, `load_data(cfg, seed) -> (X, y)` and `build_estimator(cfg: ModelConfig)`, and no METRIC, MODE,
TASK or `build_model`. Its trials score each config by k-fold cross-validation as `GridSearchCV` does (the YAML's
`cv:` section; `raytune_suite/train/estimators.py`), and the sweep optimises `mean_test_score` (max).

Everything else (optimizer, LR schedule, regularisation, the training loop, reporting) is shared, so adding an
experiment is a model, a data loader and a YAML; `raytune-suite new NAME` writes a working one to start from.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from raytune_suite.errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass
class Datasets:
    """Tensors held in memory: x may be any tensor the model takes (images, token ids, id pairs)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A loss for training, the validation metrics derived from (outputs, targets), and each metric's direction."""

    loss: Callable[..., torch.Tensor]
    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    directions: dict[str, str]  # the keys of `metrics`'s dict -> "min" or "max"


# torch is imported where a loss or metric runs, not with this module: an estimator experiment's driver and trials
# (scikit-learn only) load experiments without paying its import (1.6 s here, more on a busy machine).
def _classification_loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    import torch.nn.functional as F

    return F.cross_entropy(out, y, label_smoothing=label_smoothing)


def _regression_loss(out: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    import torch.nn.functional as F

    # ½·MSE, the guide's (1/2m)·Σ(h(x) − y)².
    return 0.5 * F.mse_loss(out.reshape(y.shape), y)


def _classification_metrics(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    import torch.nn.functional as F

    return {
        "val_loss": F.cross_entropy(out, y).item(),
        "val_accuracy": (out.argmax(dim=1) == y).float().mean().item(),
    }


def _regression_metrics(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    import torch.nn.functional as F

    mse = F.mse_loss(out.reshape(y.shape), y).item()
    return {"val_loss": 0.5 * mse, "val_rmse": math.sqrt(mse)}


TASKS: dict[str, Task] = {
    "classification": Task(_classification_loss, _classification_metrics, {"val_accuracy": "max", "val_loss": "min"}),
    "regression": Task(_regression_loss, _regression_metrics, {"val_loss": "min", "val_rmse": "min"}),
}
# What every torch trial reports besides its task's metrics that a sweep may optimise (trainable.py).
TRAINING_DIRECTIONS = {"train_loss": "min"}

REQUIRED = ("METRIC", "MODE", "TASK", "DataConfig", "ModelConfig", "load_data", "build_model")
# What an estimator experiment defines instead (its kind is told by `build_estimator`).
ESTIMATOR_REQUIRED = ("DataConfig", "ModelConfig", "load_data", "build_estimator")
# The objective of every estimator sweep: GridSearchCV's name for the mean of `cv.scoring` over the folds;
# scikit-learn scorers are greater-is-better (losses are negated: neg_log_loss).
ESTIMATOR_METRIC, ESTIMATOR_MODE = "mean_test_score", "max"


@dataclass(frozen=True)
class Experiment:
    ref: str
    module: ModuleType

    @property
    def name(self) -> str:
        return self.module.__name__.rsplit(".", 1)[-1]

    @property
    def kind(self) -> str:
        """`torch` (build_model, trained epoch by epoch) or `estimator` (build_estimator, cross-validated)."""
        return "estimator" if hasattr(self.module, "build_estimator") else "torch"

    @property
    def metric(self) -> str:
        return ESTIMATOR_METRIC if self.kind == "estimator" else self.module.METRIC

    @property
    def mode(self) -> str:
        return ESTIMATOR_MODE if self.kind == "estimator" else self.module.MODE

    @property
    def task(self) -> Task:
        return TASKS[self.module.TASK]

    @property
    def objectives(self) -> dict[str, str]:
        """Each metric a sweep of this experiment can optimise -> its direction, "min" or "max"."""
        if self.kind == "estimator":
            return {ESTIMATOR_METRIC: ESTIMATOR_MODE}
        return {**self.task.directions, **TRAINING_DIRECTIONS}

    def __getattr__(self, item: str) -> Any:
        return getattr(self.module, item)


@cache
def load_experiment(ref: str) -> Experiment:
    """Import an experiment by name (`mnist_cnn` -> experiments.mnist_cnn), dotted module or .py path."""
    from raytune_suite.run.stops import stops_held

    with stops_held():  # the module imports torch or scikit-learn: a stop then is raised once it is done
        module = _import(ref)
    estimator = hasattr(module, "build_estimator")
    if estimator and hasattr(module, "build_model"):
        raise ConfigError(
            f"experiment: module {ref!r} defines both build_model and build_estimator; keep one "
            "(a torch model or a scikit-learn estimator)"
        )
    missing = [name for name in (ESTIMATOR_REQUIRED if estimator else REQUIRED) if not hasattr(module, name)]
    if missing:
        raise ConfigError(f"experiment: module {ref!r} lacks {', '.join(missing)}; see docs/writing-an-experiment.md")
    if not estimator and module.TASK not in TASKS:
        raise ConfigError(f"experiment: {ref!r} has TASK {module.TASK!r}; choose one of: {', '.join(TASKS)}")
    for cfg_class in (module.DataConfig, module.ModelConfig):
        if not (isinstance(cfg_class, type) and issubclass(cfg_class, BaseModel)):
            raise ConfigError(f"experiment: {ref}.{cfg_class} must be a pydantic BaseModel")
    experiment = Experiment(ref, module)
    if not estimator:
        check_objective_of(experiment)
    return experiment


def check_objective_of(experiment: Experiment) -> None:
    """METRIC is one its TASK reports, and MODE is that metric's direction: a sweep maximising a loss publishes its
    worst trial as the best."""
    ref, metric, directions = experiment.ref, experiment.METRIC, experiment.objectives
    if metric not in directions:
        raise ConfigError(
            f"experiment: {ref!r} has METRIC {metric!r}, which TASK {experiment.TASK!r} does not report; "
            f"choose one of: {describe_objectives(directions)}"
        )
    if directions[metric] != experiment.MODE:
        raise ConfigError(
            f"experiment: {ref!r} has MODE {experiment.MODE!r}, but {metric} is better when "
            f"{better_when(directions[metric])}; set MODE = {directions[metric]!r}"
        )


def describe_objectives(directions: dict[str, str]) -> str:
    return ", ".join(f"{metric} ({direction})" for metric, direction in directions.items())


def better_when(direction: str) -> str:
    return "lower" if direction == "min" else "higher"


def _import(ref: str) -> ModuleType:
    if ref.endswith(".py"):
        path = Path(ref)
        if not path.is_file():
            raise ConfigError(f"experiment: no file {ref}; give a path relative to the YAML, or a module name")
        spec = importlib.util.spec_from_file_location(f"raytune_suite_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # pydantic resolves the module's annotations through sys.modules
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[spec.name]
            raise ConfigError(import_failure(exc, str(path))) from None
        return module
    name = ref if "." in ref else f"experiments.{ref}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            if "." not in ref and Path(f"{ref}.py").is_file():  # a config built in code, run beside the file
                raise ConfigError(
                    f"experiment: no module {ref!r}, but {ref}.py is here; write experiment: {ref}.py"
                ) from None
            raise ConfigError(
                f"experiment: no module {ref!r}; available: {', '.join(available_experiments())}"
            ) from None
        raise ConfigError(import_failure(exc, _origin(name))) from None
    except Exception as exc:
        raise ConfigError(import_failure(exc, _origin(name))) from None


def import_failure(exc: BaseException, filename: str | None) -> str:
    """An experiment module that fails to import, as one line naming its file and line and the fix.

    The exception's type is named for anything unexpected: a bug in the module must stay recognisable.
    """
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}"
        return f"experiment: {where}: SyntaxError: {exc.msg}; fix the module there"
    where = _failing_line(exc, filename)
    if isinstance(exc, ModuleNotFoundError):
        return f"experiment: {where}: No module named {exc.name!r}; install it (or fix the import)"
    message = " ".join(str(exc).split())
    return f"experiment: {where}: {type(exc).__name__}: {message}; fix the module there"


def _failing_line(exc: BaseException, filename: str | None) -> str:
    """`file:line` of the deepest traceback frame in the experiment's own file (the statement that failed)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if filename and Path(f.filename).resolve() == Path(filename).resolve()]
    frame = (own or frames or [None])[-1]
    return f"{frame.filename}:{frame.lineno}" if frame else str(filename)


def _origin(module_name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec else None


def available_experiments() -> list[str]:
    """The experiment modules shipped in the `experiments` package."""
    spec = importlib.util.find_spec("experiments")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
