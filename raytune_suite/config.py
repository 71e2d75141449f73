"""Typed experiment configuration: YAML + `--set key=value` overrides -> one validated `ExperimentConfig`.

Everything a sweep needs is checked here, before any Ray resource exists: unknown keys, out-of-range values,
registry names (optimizers, schedules, searchers, schedulers) and the search space against the experiment's own
`ModelConfig` / `DataConfig`. Every failure is a `ConfigError` whose message is one line naming the field.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from raytune_suite.errors import ConfigError
from raytune_suite.optim import OPTIMIZERS
from raytune_suite.schedulers import SCHEDULERS
from raytune_suite.schedules import SCHEDULES
from raytune_suite.searchers import SEARCHERS
from raytune_suite.space import SECTIONS, ParamSpec, check_space

Strict = ConfigDict(extra="forbid")


def _one_of(registry: dict, what: str):
    def check(value: str) -> str:
        if value not in registry:
            raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(registry)}")
        return value

    return check


class TrainConfig(BaseModel):
    """Training hyperparameters every experiment shares: optimizer, LR schedule, regularisation."""

    model_config = Strict

    epochs: int = Field(10, ge=1, description="epochs per trial; ASHA's max_t")
    batch_size: int = Field(64, ge=1, description="ignored by optimizer 'gd' (full batch)")
    optimizer: str = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum, nesterov, rmsprop")
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    rmsprop_alpha: float = Field(0.99, gt=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, description="optimizer weight decay (decoupled for adamw)")
    decay_norms_and_biases: bool = Field(False, description="also decay 1-D params (biases, norms)")
    l2: float = Field(0.0, ge=0, description="λ of the explicit (λ/2m)·Σθ² loss penalty")
    schedule: str = "constant"
    decay_rate: float = Field(0.1, ge=0, description="k of the time and exponential schedules")
    step_size: float = Field(5.0, gt=0, description="epochs between drops of the step schedule")
    gamma: float = Field(0.5, gt=0, le=1, description="drop factor of the step schedule")
    warmup_epochs: float = Field(0.0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="classification tasks only")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype of forward passes; fp16 adds a GradScaler and needs CUDA (CPU: bf16)"
    )
    grad_accum_steps: int = Field(1, ge=1, description="micro-batches of batch_size per optimizer step")
    grad_clip_norm: float | None = Field(None, gt=0, description="clip the global gradient norm; null: no clipping")

    _optimizer = field_validator("optimizer")(_one_of(OPTIMIZERS, "optimizer"))
    _schedule = field_validator("schedule")(_one_of(SCHEDULES, "schedule"))


class Resources(BaseModel):
    model_config = Strict
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class AshaSettings(BaseModel):
    model_config = Strict
    grace_period: int = Field(1, ge=1, description="epochs every trial gets before it can be stopped")
    reduction_factor: float = Field(3.0, gt=1)


class TuneSettings(BaseModel):
    """How the sweep searches: metric, searcher, scheduler, budget, parallelism."""

    model_config = Strict

    metric: str | None = Field(None, description="defaults to the experiment's METRIC")
    mode: Literal["min", "max"] | None = Field(None, description="defaults to the experiment's MODE")
    search: str = "hyperopt"
    scheduler: str = "asha"
    num_samples: int = Field(20, ge=1, description="trials (grid: repeats of the grid)")
    max_concurrent: int | None = Field(None, ge=1, description="default: what the cluster can hold")
    n_initial_points: int | None = Field(None, ge=1, description="HyperOpt random start-up trials")
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)
    seed: int = 0
    asha: AshaSettings = Field(default_factory=AshaSettings)
    resources: Resources = Field(default_factory=Resources)
    max_failures: int = Field(2, ge=0, description="retries of a crashed trial from its checkpoint")
    checkpoint_every: int = Field(1, ge=1, description="epochs between checkpoints")
    workers_per_trial: int = Field(
        1, ge=1, description="data-parallel Ray Train workers per trial (DDP); tune.resources are then per worker"
    )

    _search = field_validator("search")(_one_of(SEARCHERS, "search"))
    _scheduler = field_validator("scheduler")(_one_of(SCHEDULERS, "scheduler"))


class MlflowSettings(BaseModel):
    model_config = Strict
    tracking_uri: str | None = Field(None, description="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    experiment_name: str | None = Field(None, description="default: the config's name")


class RunSettings(BaseModel):
    model_config = Strict
    name: str | None = Field(None, description="sweep name; default: <config name>-<timestamp>")
    storage: str = Field("ray_results", description="where Ray keeps results and checkpoints")


class ExperimentConfig(BaseModel):
    """One sweep: which experiment, its fixed parameters, the search space and how to tune it.

    Args:
        name: the sweep's name (defaults to the YAML file's stem).
        experiment: the experiment module: a name in `experiments/`, a dotted module, or a path to a .py file.
        data / model: the experiment's own `DataConfig` / `ModelConfig` fields (validated by the experiment).
        train: the shared `TrainConfig`.
        space: per section (`train`, `model`, `data`), the parameters to tune.
    """

    model_config = Strict

    name: str
    experiment: str
    description: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    space: dict[Literal["train", "model", "data"], dict[str, ParamSpec]] = Field(default_factory=dict)
    tune: TuneSettings = Field(default_factory=TuneSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    @model_validator(mode="after")
    def _epochs_belong_to_the_scheduler(self) -> ExperimentConfig:
        if "epochs" in self.space.get("train", {}) and self.tune.scheduler != "fifo":
            raise ValueError(
                "space.train.epochs: the scheduler decides how long trials train; fix train.epochs "
                "or use tune.scheduler: fifo"
            )
        return self

    def fixed_sections(self) -> dict[str, dict[str, Any]]:
        """The fixed (untuned) values of every section, as plain dicts."""
        return {"data": dict(self.data), "model": dict(self.model), "train": self.train.model_dump()}


# PyYAML follows YAML 1.1, where `1e-3` is a string; ML configs are full of such numbers.
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (`lr=1e-3`, `x=[1,2]`)."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. --set train.lr=0.01")
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} holds a value, not a section")
        node = child
    node[parts[-1]] = parse_yaml(value)


def format_validation_error(err: ValidationError, prefix: str = "", root: type[BaseModel] | None = None) -> str:
    """The first pydantic error as one line: `field.path: what is wrong`."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-after"))
    msg = first["msg"].removeprefix("Value error, ")
    if not loc and not prefix:  # a whole-config check: its message names its own field
        return msg
    if first["type"] == "extra_forbidden":
        model = _model_at(root or ExperimentConfig, [str(p) for p in first["loc"][:-1]])
        msg = "unknown key" + (f"; valid keys: {', '.join(model.model_fields)}" if model else "")
    elif first["type"] == "missing":
        msg = "required field is missing"
    more = len(err.errors()) - 1
    field = f"{prefix}{loc}" if loc else prefix.rstrip(".")
    return f"{field}: {msg}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _model_at(model: type[BaseModel] | None, path: list[str]) -> type[BaseModel] | None:
    """The nested config model at `path`, to list its valid keys (None where the path leaves typed models)."""
    for part in path:
        field = model.model_fields.get(part) if model else None
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def load_config(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read, override and validate a sweep config, experiment-specific sections included."""
    path = Path(path)
    try:
        raw = parse_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass the path of an experiment YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (experiment, train, space, tune, ...)")
    raw = copy.deepcopy(raw)
    raw.setdefault("name", path.stem)
    for assignment in overrides:
        apply_override(raw, assignment)
    if isinstance(raw.get("experiment"), str):
        raw["experiment"] = resolve_experiment_ref(raw["experiment"], path.parent)
    return validate_config(raw)


def resolve_experiment_ref(ref: str, base: Path) -> str:
    """A `.py` path relative to the YAML becomes absolute, so trials on any worker find the same file."""
    if ref.endswith(".py"):
        return str((base / ref).resolve())
    return ref


def validate_config(raw: dict[str, Any]) -> ExperimentConfig:
    from raytune_suite.experiments import load_experiment

    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    experiment = load_experiment(cfg.experiment)
    cfg.data = _validated_section(experiment.DataConfig, cfg.data, "data")
    cfg.model = _validated_section(experiment.ModelConfig, cfg.model, "model")
    cfg.tune.metric = cfg.tune.metric or experiment.METRIC
    cfg.tune.mode = cfg.tune.mode or experiment.MODE
    section_models = {"train": TrainConfig, "model": experiment.ModelConfig, "data": experiment.DataConfig}
    check_space(cfg.space, cfg.fixed_sections(), section_models, cfg.tune.search)
    _check_points(cfg)
    return cfg


def _validated_section(model: type[BaseModel], values: dict[str, Any], section: str) -> dict[str, Any]:
    try:
        return model.model_validate(values).model_dump()
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, prefix=f"{section}.", root=model)) from None


def _check_points(cfg: ExperimentConfig) -> None:
    for i, point in enumerate(cfg.tune.points_to_evaluate):
        for section, values in point.items():
            if section not in SECTIONS or not isinstance(values, dict):
                raise ConfigError(
                    f"tune.points_to_evaluate[{i}].{section}: expected one of the sections "
                    f"{', '.join(SECTIONS)} holding parameter values"
                )
            for name in values:
                if name not in cfg.space.get(section, {}):
                    raise ConfigError(
                        f"tune.points_to_evaluate[{i}].{section}.{name}: not in the search space; "
                        f"only tuned parameters can be seeded"
                    )
