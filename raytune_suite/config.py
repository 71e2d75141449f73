"""Typed experiment configuration: YAML + `--set key=value` overrides -> one validated `ExperimentConfig`.

The config's own checks live here, in the order `preflight.py` runs them before any Ray resource exists: the file
(readable UTF-8 YAML, no duplicate keys, a mapping), `--set` overrides, finite numbers, then the typed models:
unknown keys, out-of-range values, registry names (optimizers, schedules, searchers, schedulers; their modules are
imported only when a name is checked, so a YAML typo never waits for torch) and the search space against the
experiment's own `ModelConfig` / `DataConfig`. Every failure is a `ConfigError` whose message is one line naming the
field.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from raytune_suite.errors import ConfigError
from raytune_suite.space import SECTIONS, ParamSpec, check_space, conditional_params

# Non-finite numbers are never a meaningful setting: `lr: .inf` would train to NaN and still be ranked.
Strict = ConfigDict(extra="forbid", allow_inf_nan=False)


def _one_of(registry: str, what: str):
    """A validator against the registry `module:NAME`, imported only when a value is checked: the optimizer and
    schedule registries import torch, which a YAML syntax error or a bad CLI flag should never wait for."""
    module, _, name = registry.partition(":")

    def check(value: str) -> str:
        names = getattr(importlib.import_module(module), name)
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(names)}")
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

    _optimizer = field_validator("optimizer")(_one_of("raytune_suite.optim:OPTIMIZERS", "optimizer"))
    _schedule = field_validator("schedule")(_one_of("raytune_suite.schedules:SCHEDULES", "schedule"))


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

    _search = field_validator("search")(_one_of("raytune_suite.searchers:SEARCHERS", "search"))
    _scheduler = field_validator("scheduler")(_one_of("raytune_suite.schedulers:SCHEDULERS", "scheduler"))


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

    @model_validator(mode="after")
    def _grace_period_fits_the_epochs(self) -> ExperimentConfig:
        # ASHA would silently clip it to max_t: the sweep then never stops a trial early.
        grace, epochs = self.tune.asha.grace_period, self.train.epochs
        if self.tune.scheduler == "asha" and grace > epochs:
            raise ValueError(
                f"tune.asha.grace_period: {grace} is more than train.epochs ({epochs}), so ASHA could never stop "
                f"a trial; set tune.asha.grace_period <= {epochs} or raise train.epochs"
            )
        return self

    def fixed_sections(self) -> dict[str, dict[str, Any]]:
        """The fixed (untuned) values of every section, as plain dicts."""
        return {"data": dict(self.data), "model": dict(self.model), "train": self.train.model_dump()}


# PyYAML follows YAML 1.1, where `1e-3` is a string; ML configs are full of such numbers.
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice: PyYAML would silently keep the last one."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (`1e-3`) that refuses duplicate keys at any level."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may legitimately repeat keys it merges
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                first = seen[key].start_mark.line + 1
                raise DuplicateKeyError(
                    problem=f"duplicate key {key!r} (first at line {first}); merge the two into one",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def yaml_problem(exc: yaml.YAMLError, with_line: bool = True) -> str:
    """PyYAML's explanation on one line (its own spans several), led by the line number where it has one."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}: " if mark and with_line else ""
    return where + " ".join(str(problem).split())


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
    try:
        node[parts[-1]] = parse_yaml(value)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {key}: {value!r} is not valid YAML ({yaml_problem(exc)}); quote it or close its brackets, "
            "e.g. --set 'train.lr=0.01' or --set 'space.model.channels.values=[16, 32]'"
        ) from None


def format_validation_error(err: ValidationError, prefix: str = "", root: type[BaseModel] | None = None) -> str:
    """The first pydantic error as one line: `field.path: what is wrong`."""
    first = err.errors()[0]
    # pydantic's own location steps ("function-after[...]", "[key]" for a bad dict key) are no config field
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-after", "[key]")))
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
    raw = parse_config_text(read_config_text(path), path)
    raw = apply_overrides(raw, overrides, path)
    check_finite_numbers(raw)
    return validate_config(raw)


def read_config_text(path: Path) -> str:
    """The file's text, or one line saying why there is none: missing, a folder, not a file, unreadable, binary."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file; pass the path of an experiment YAML")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a file; pass the experiment YAML inside it")
    if not path.is_file():  # a FIFO or device would block or stream for ever
        raise ConfigError(f"{path}: not a regular file; pass the path of an experiment YAML")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror or err}); check its permissions") from None
    if b"\0" in data:
        raise ConfigError(f"{path}: a binary file, not YAML text; pass the experiment YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save it as UTF-8"
        ) from None


def parse_config_text(text: str, path: Path) -> dict[str, Any]:
    """YAML without duplicate keys whose top level is a mapping of sections."""
    try:
        raw = parse_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = yaml_problem(exc, with_line=False)
        raise ConfigError(f"{path}:{where} is not valid YAML: {problem}; fix the YAML there") from None
    if raw is None:
        raise ConfigError(f"{path}: empty; an experiment YAML needs at least `experiment: NAME`")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (experiment, train, space, tune, ...)")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str], path: Path) -> dict[str, Any]:
    """A copy of `raw` with its default name, the `--set` overrides and the experiment path resolved."""
    raw = copy.deepcopy(raw)
    raw.setdefault("name", path.stem)
    for assignment in overrides:
        apply_override(raw, assignment)
    if isinstance(raw.get("experiment"), str):
        raw["experiment"] = resolve_experiment_ref(raw["experiment"], path.parent)
    return raw


def check_finite_numbers(node: Any, where: str = "") -> None:
    """Refuse `.inf` / `.nan` anywhere (experiment sections and seed points too, which no typed model covers)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{where or 'config'}: {node} is not a finite number; give a finite value")
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        check_finite_numbers(child, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))


def resolve_experiment_ref(ref: str, base: Path) -> str:
    """A `.py` path relative to the YAML becomes absolute, so trials on any worker find the same file."""
    if ref.endswith(".py"):
        return str((base / ref).resolve())
    if "." not in ref and (base / f"{ref}.py").is_file() and not _shipped_experiment(ref):
        # `experiment: foo` with foo.py beside the YAML but no experiments.foo: the user meant the file.
        raise ConfigError(
            f"experiment: no module {ref!r}, but {(base / ref).resolve()}.py sits next to the YAML; "
            f"write experiment: {ref}.py"
        )
    return ref


def _shipped_experiment(name: str) -> bool:
    try:
        return importlib.util.find_spec(f"experiments.{name}") is not None
    except ModuleNotFoundError:  # no `experiments` package at all
        return False


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
    check_seed_points_fit_the_searcher(cfg)


def check_seed_points_fit_the_searcher(cfg: ExperimentConfig) -> None:
    """HyperOpt needs complete seed points, which a conditional (tree-shaped) space cannot give."""
    conditional = conditional_params(cfg.space)
    if cfg.tune.points_to_evaluate and cfg.tune.search == "hyperopt" and conditional:
        section, name = conditional[0]
        raise ConfigError(
            f"tune.points_to_evaluate[0]: spaces with conditional parameters ({section}.{name}) cannot be "
            "seeded; remove points_to_evaluate or the 'when'"
        )
