"""Typed experiment configuration: YAML + `--set key=value` overrides -> one validated `ExperimentConfig`.

The config's own checks live here, in the order `preflight.py` runs them before any Ray resource exists: the file
(readable UTF-8 YAML of at most `MAX_CONFIG_BYTES`, aliases expanding to at most `MAX_CONFIG_NODES` values, no
duplicate keys, a mapping), `--set` overrides, finite numbers, then the typed models in two passes. `check_schema`
answers from the YAML alone (unknown keys, types, ranges, the shared train section's space) without importing the
experiment or a registry, so such a typo never waits for torch; `validate_config` then checks registry names
(optimizers, schedules, searchers, schedulers; their modules are imported only when a name is checked) and the
search space against the experiment's own `ModelConfig` / `DataConfig`. Every failure is a `ConfigError` whose
message is one line naming the field.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from raytune_suite.config.objective import Objective
from raytune_suite.config.space import CONTINUOUS, SECTIONS, ParamSpec, check_space, conditional_params, longest_value
from raytune_suite.errors import ConfigError

if TYPE_CHECKING:
    from raytune_suite.experiments import Experiment

# Non-finite numbers are never a meaningful setting: `lr: .inf` would train to NaN and still be ranked.
Strict = ConfigDict(extra="forbid", allow_inf_nan=False)
# Validation context of `check_schema`: every check the YAML alone decides, none that imports a registry's module.
SCHEMA_ONLY = {"registries": False}


def _registries_checked(info: ValidationInfo) -> bool:
    return not (info.context and info.context.get("registries") is False)


def _one_of(registry: str, what: str):
    """A validator against the registry `module:NAME`, imported only when a value is checked: the optimizer and
    schedule registries import torch, which a YAML syntax error or a bad CLI flag should never wait for (and which
    `check_schema` skips)."""
    module, _, name = registry.partition(":")

    def check(value: str, info: ValidationInfo) -> str:
        if not _registries_checked(info):
            return value
        names = getattr(importlib.import_module(module), name)
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(names)}")
        return value

    return check


# Train keys whose default the optimizer decides when the config leaves them unset (see `fixed_sections`).
OPTIMIZER_DEPENDENT_DEFAULTS = ("momentum",)


class TrainConfig(BaseModel):
    """Training hyperparameters every experiment shares: optimizer, LR schedule, regularisation."""

    model_config = Strict

    epochs: int = Field(
        10, ge=1, description="epochs per trial; ASHA's max_t (and the length cosine schedules decay over)"
    )
    batch_size: int = Field(
        64, ge=1, description="examples per mini-batch (micro-batch with grad_accum_steps); ignored by optimizer gd"
    )
    optimizer: str = Field("adamw", description="name in the OPTIMIZERS registry (raytune_suite/train/optim.py)")
    lr: float = Field(1e-3, gt=0, description="base learning rate; the schedule multiplies it by a factor of the epoch")
    momentum: float = Field(
        0.9,
        ge=0,
        lt=1,
        description="read by optimizers momentum, nesterov and rmsprop; rmsprop keeps PyTorch's 0 unless this is set",
    )
    beta1: float = Field(0.9, ge=0, lt=1, description="first-moment decay; read by optimizers adam and adamw")
    beta2: float = Field(0.999, ge=0, lt=1, description="second-moment decay; read by optimizers adam and adamw")
    rmsprop_alpha: float = Field(
        0.99, gt=0, lt=1, description="smoothing of the squared-gradient average; read by optimizer rmsprop"
    )
    weight_decay: float = Field(
        0.0, ge=0, description="optimizer weight decay, every optimizer (decoupled for adamw); 1-D params exempt"
    )
    decay_norms_and_biases: bool = Field(
        False, description="also decay 1-D params (biases, norm gains), which weight_decay exempts by default"
    )
    l2: float = Field(0.0, ge=0, description="λ of the explicit (λ/2m)·Σθ² loss penalty, every optimizer")
    schedule: str = Field(
        "constant", description="LR schedule, a name in the SCHEDULES registry (raytune_suite/train/schedules.py)"
    )
    decay_rate: float = Field(
        0.1, ge=0, description="k of lr/(1+k·t) and lr·e^(−k·t); read by schedules time, exponential"
    )
    step_size: float = Field(5.0, gt=0, description="epochs between drops; read by schedule step")
    gamma: float = Field(0.5, gt=0, le=1, description="factor of each drop; read by schedule step")
    warmup_epochs: float = Field(
        0.0, ge=0, description="epochs of linear warm-up from 0 to lr (< epochs); read by schedule warmup_cosine"
    )
    min_lr_ratio: float = Field(
        0.0, ge=0, le=1, description="floor of the cosine as a fraction of lr; read by schedules cosine, warmup_cosine"
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="cross-entropy label smoothing; classification tasks only"
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype of forward passes; fp16 adds a GradScaler and needs CUDA (CPU: bf16)"
    )
    grad_accum_steps: int = Field(1, ge=1, description="micro-batches of batch_size per optimizer step")
    grad_clip_norm: float | None = Field(None, gt=0, description="clip the global gradient norm; null: no clipping")

    _optimizer = field_validator("optimizer")(_one_of("raytune_suite.train.optim:OPTIMIZERS", "optimizer"))
    _schedule = field_validator("schedule")(_one_of("raytune_suite.train.schedules:SCHEDULES", "schedule"))


class Resources(BaseModel):
    """What one trial (one worker with workers_per_trial > 1) reserves."""

    model_config = Strict
    cpu: float = Field(1.0, gt=0, description="CPUs per trial (per worker with workers_per_trial > 1)")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; a fraction shares a device between trials")


class AshaSettings(BaseModel):
    """ASHA's early stopping (tune.scheduler: asha): rungs at grace_period · reduction_factor^k epochs."""

    model_config = Strict
    grace_period: int = Field(1, ge=1, description="epochs every trial gets before it can be stopped (≤ train.epochs)")
    reduction_factor: float = Field(3.0, gt=1, description="at each rung only the best 1/reduction_factor go on")


MAX_SEED = 2**32 - 1
# A third of HyperOpt's proposals at random, as BOHB does by default: on the search benchmark's flat real tables TPE
# alone fixed on a few configs and lost to random search beyond its interval (benchmarks/searchbench, README).
RANDOM_FRACTION = 1 / 3


class TuneSettings(BaseModel):
    """How the sweep searches: metric, searcher, scheduler, budget, parallelism."""

    model_config = Strict

    metric: str | None = Field(
        None,
        description="defaults to the experiment's METRIC; one its task reports: val_loss, val_accuracy "
        "(classification) or val_rmse (regression), train_loss",
    )
    mode: Literal["min", "max"] | None = Field(
        None, description="defaults to tune.metric's direction (val_accuracy: max; the losses, val_rmse: min)"
    )
    search: str = Field("hyperopt", description="searcher, a name in SEARCHERS (raytune_suite/search/searchers.py)")
    scheduler: str = Field(
        "asha", description="trial scheduler, a name in SCHEDULERS (raytune_suite/search/schedulers.py)"
    )
    num_samples: int = Field(20, ge=1, description="trials (grid: repeats of the grid)")
    max_concurrent: int | None = Field(None, ge=1, description="default: what the cluster can hold")
    n_initial_points: int | None = Field(None, ge=1, description="HyperOpt random start-up trials")
    random_fraction: float = Field(
        RANDOM_FRACTION,
        ge=0,
        lt=1,
        description="HyperOpt: the share of proposals after start-up drawn at random, not by TPE (0: pure TPE)",
    )
    points_to_evaluate: list[dict[str, Any]] = Field(
        default_factory=list, description="seed configs tried first, e.g. [{train: {lr: 1.0e-3}}]; tuned keys only"
    )
    # NumPy's generators (HyperOpt's, scikit-learn's splits) take seeds in [0, 2**32 - 1] only.
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seeds the searcher and each trial's torch (not the data: see split_seed)"
    )
    split_seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="seeds load_data's train/validation split and cv folds: fixed while tune.seed varies the search",
    )
    asha: AshaSettings = Field(default_factory=AshaSettings, description="ASHA's settings (see tune.asha.*)")
    resources: Resources = Field(default_factory=Resources, description="per trial (see tune.resources.*)")
    max_failures: int = Field(2, ge=0, description="retries of a crashed trial from its checkpoint")
    checkpoint_every: int = Field(1, ge=1, description="epochs between checkpoints")
    workers_per_trial: int = Field(
        1, ge=1, description="data-parallel Ray Train workers per trial (DDP); tune.resources are then per worker"
    )

    _search = field_validator("search")(_one_of("raytune_suite.search.searchers:SEARCHERS", "search"))
    _scheduler = field_validator("scheduler")(_one_of("raytune_suite.search.schedulers:SCHEDULERS", "scheduler"))


class MlflowSettings(BaseModel):
    """Where the sweep is recorded (the CLI's --mlflow-uri wins over tracking_uri)."""

    model_config = Strict
    tracking_uri: str | None = Field(None, description="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    experiment_name: str | None = Field(None, description="default: the config's name")


class RunSettings(BaseModel):
    """The sweep's folder (the CLI's --storage wins over storage)."""

    model_config = Strict
    name: str | None = Field(None, description="sweep name; default: <config name>-<timestamp>")
    storage: str = Field("ray_results", description="where Ray keeps results and checkpoints (folder or URI)")


def _scorer_name(value: str, info: ValidationInfo) -> str:
    """A scikit-learn scorer name (imported only when checked), with the nearest names when it is unknown."""
    if not _registries_checked(info):
        return value
    import difflib

    from sklearn.metrics import get_scorer_names

    names = get_scorer_names()
    if value not in names:
        close = difflib.get_close_matches(value, names, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(f"unknown scoring {value!r}; {hint}the names are sklearn.metrics.get_scorer_names()")
    return value


class CvSettings(BaseModel):
    """Cross-validation of estimator experiments (modules with build_estimator): each config is scored as
    GridSearchCV scores it, on the same folds for every config. Torch experiments refuse this section."""

    model_config = Strict
    folds: int = Field(
        5, ge=2, description="k: every config is fitted k times, each fold held out once (GridSearchCV's cv)"
    )
    scoring: str = Field(
        "accuracy",
        description="a scikit-learn scorer name (sklearn.metrics.get_scorer_names()); greater is better (losses are "
        "negated: neg_log_loss)",
    )
    shuffle: bool = Field(
        True, description="shuffle before splitting (seeded by cv.seed); false: exactly GridSearchCV(cv=k)'s folds"
    )
    seed: int | None = Field(None, description="seeds the shuffled folds; default: tune.split_seed")

    _scoring = field_validator("scoring")(_scorer_name)


class ExperimentConfig(BaseModel):
    """One sweep: which experiment, its fixed parameters, the search space and how to tune it.

    Args:
        name: the sweep's name (defaults to the YAML file's stem).
        experiment: the experiment module: a name in `experiments/`, a dotted module, or a path to a .py file.
        data / model: the experiment's own `DataConfig` / `ModelConfig` fields (validated by the experiment).
        train: the shared `TrainConfig` (torch experiments).
        cv: the cross-validation of estimator experiments (`CvSettings`).
        space: per section (`train`, `model`, `data`), the parameters to tune.
    """

    model_config = Strict

    name: str = Field(description="the sweep's name; default: the YAML file's stem")
    experiment: str = Field(
        description="the experiment module: a .py path relative to the YAML, a name in experiments/, "
        "or a dotted module of an installed package"
    )
    description: str = Field("", description="free text for readers of the YAML; not used by the sweep")
    data: dict[str, Any] = Field(
        default_factory=dict, description="the experiment's DataConfig fields (validated by the experiment)"
    )
    model: dict[str, Any] = Field(
        default_factory=dict, description="the experiment's ModelConfig fields (validated by the experiment)"
    )
    train: TrainConfig = Field(
        default_factory=TrainConfig, description="the shared TrainConfig of torch experiments (see train.*)"
    )
    cv: CvSettings = Field(
        default_factory=CvSettings, description="cross-validation of estimator experiments (see cv.*)"
    )
    space: dict[Literal["train", "model", "data"], dict[str, ParamSpec]] = Field(
        default_factory=dict,
        description="per section (train, model, data), the parameters to tune: {name: parameter spec}",
    )
    tune: TuneSettings = Field(default_factory=TuneSettings, description="how the sweep searches (see tune.*)")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings, description="tracking (see mlflow.*)")
    run: RunSettings = Field(default_factory=RunSettings, description="results folder (see run.*)")

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

    @model_validator(mode="after")
    def _warmup_ends_before_training_does(self) -> ExperimentConfig:
        # A warm-up as long as training never reaches train.lr and never decays: not the schedule the config names.
        tuned = self.space.get("train", {})
        schedules = (tuned["schedule"].values or []) if "schedule" in tuned else [self.train.schedule]
        if "warmup_cosine" not in schedules or "epochs" in tuned:
            return self
        epochs, where, longest, reached = self.train.epochs, "train.warmup_epochs", self.train.warmup_epochs, True
        if "warmup_epochs" in tuned:
            spec = tuned["warmup_epochs"]
            where, longest = "space.train.warmup_epochs", longest_value(spec)
            reached = spec.type not in CONTINUOUS  # uniform draws from [low, high): never high itself
        if longest is not None and (longest > epochs or (reached and longest == epochs)):
            raise ValueError(
                f"{where}: a warm-up of {longest:g} epoch(s) is not shorter than train.epochs ({epochs}), "
                "so the lr would never reach train.lr nor decay; shorten the warm-up or raise train.epochs"
            )
        return self

    @property
    def kind(self) -> str:
        """The experiment's kind: `torch` or `estimator` (experiments.Experiment.kind; the module is imported)."""
        from raytune_suite.experiments import load_experiment

        return load_experiment(self.experiment).kind

    @property
    def objective(self) -> Objective:
        """The sweep's objective (`tune.metric`, `tune.mode`): every "better than" of the sweep asks it."""
        return Objective(self.tune.metric, self.tune.mode)

    def fixed_sections(self) -> dict[str, dict[str, Any]]:
        """The fixed (untuned) values of every section, as plain dicts; an estimator experiment has no `train`.

        A train key whose default depends on the optimizer (`momentum`: 0.9 for SGD, PyTorch's 0 for RMSprop) is
        left out unless the config sets it or every trial samples it, so each trial's `TrainConfig` still knows
        it was never set (`model_fields_set`, read by `optim.py`).
        """
        if self.kind == "estimator":
            return {"data": dict(self.data), "model": dict(self.model)}
        train = self.train.model_dump()
        tuned = self.space.get("train", {})
        for key in OPTIMIZER_DEPENDENT_DEFAULTS:
            always_sampled = key in tuned and not tuned[key].when
            if key not in self.train.model_fields_set and not always_sampled:
                del train[key]
        return {"data": dict(self.data), "model": dict(self.model), "train": train}


# PyYAML follows YAML 1.1, where `1e-3` is a string; ML configs are full of such numbers.
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice: PyYAML would silently keep the last one."""


class ExpansionError(yaml.MarkedYAMLError):
    """Anchors and aliases that expand past `MAX_CONFIG_NODES` values, or an alias inside its own anchor."""


# A config file is untrusted input: what parsing it may cost is bounded before its values are read. The shipped
# configs are under 4 KB and 300 values; 0.5 MB of keys took 1.2-1.5 s to refuse as a process on these loaded 2-CPU
# machines (libyaml parses, PyYAML resolves and constructs in Python), so 256 KiB answers well within 2 s.
MAX_CONFIG_BYTES = 256 * 1024
# Values once every alias is expanded: `a: &a [1, 1, ...]; b: &b [*a, *a, ...]` nine levels deep is a 1 KB file
# of 387 million values, which every walk over the config (finite numbers, pydantic) would visit.
MAX_CONFIG_NODES = 100_000

# libyaml's parser (C) is 7x faster than PyYAML's own on a large file; the constructor stays PyYAML's either way.
_BaseLoader = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


class _Loader(_BaseLoader):
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
    """One YAML document, refused before construction when its aliases expand past `MAX_CONFIG_NODES` values."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return node.value  # a SequenceNode's


def check_expansion(root: yaml.Node, limit: int = MAX_CONFIG_NODES) -> None:
    """Counts the values the node graph holds with every alias expanded, without expanding it: each collection once,
    its size the sum of its children's (an alias is the same node object as its anchor), a scalar 1. Iterative: a
    deeply nested file cannot exhaust Python's stack here."""
    if isinstance(root, yaml.ScalarNode):
        return
    size: dict[int, int] = {}
    open_nodes: set[int] = set()  # collections on the path being counted: meeting one again is a cycle
    stack = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in size:  # an alias met twice before it was counted
            stack.pop()
        elif key not in open_nodes:
            open_nodes.add(key)
            for child in _children(node):
                if isinstance(child, yaml.ScalarNode) or id(child) in size:
                    continue
                if id(child) in open_nodes:
                    raise ExpansionError(
                        problem="an alias inside its own anchor (a value that contains itself); remove that alias",
                        problem_mark=node.start_mark,
                    )
                stack.append(child)
        else:
            stack.pop()
            open_nodes.discard(key)
            size[key] = 1 + sum(size.get(id(child), 1) for child in _children(node))
            if size[key] > limit:
                raise ExpansionError(
                    problem=f"the value here expands to more than {limit:,} values through anchors and aliases (an "
                    "experiment YAML holds hundreds); write the values out instead of repeating aliases",
                    problem_mark=node.start_mark,
                )


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
    except ExpansionError as exc:
        raise ConfigError(f"--set {key}: {yaml_problem(exc, with_line=False)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {key}: {value!r} is not valid YAML ({yaml_problem(exc)}); quote it or close its brackets, "
            "e.g. --set 'train.lr=0.01' or --set 'space.model.channels.values=[16, 32]'"
        ) from None


def format_validation_error(err: ValidationError, prefix: str = "", root: type[BaseModel] | None = None) -> str:
    """The first pydantic error as one line: `field.path: what is wrong`."""
    first = err.errors(include_url=False, include_context=False, include_input=False)[0]
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
    more = err.error_count() - 1
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
    """The file's text, or one line saying why there is none: missing, a folder, not a file, unreadable, binary,
    larger than `MAX_CONFIG_BYTES` (read no further than that)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file; pass the path of an experiment YAML")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a file; pass the experiment YAML inside it")
    if not path.is_file():  # a FIFO or device would block or stream for ever
        raise ConfigError(f"{path}: not a regular file; pass the path of an experiment YAML")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # /proc files report size 0: the read itself is bounded
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror or err}); check its permissions") from None
    if len(data) > MAX_CONFIG_BYTES:
        size = max(path.stat().st_size, len(data))
        raise ConfigError(
            f"{path}: {size / 1024:,.0f} KiB, more than an experiment YAML's limit of {MAX_CONFIG_BYTES // 1024} KiB "
            "(they are a few KB); pass the experiment's YAML, and keep data in files that load_data reads"
        )
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
    except (DuplicateKeyError, ExpansionError) as exc:
        raise ConfigError(f"{path}: {yaml_problem(exc)}") from None
    except RecursionError:  # PyYAML's own parser (without libyaml) recurses per nesting level
        raise ConfigError(f"{path}: nested too deeply to be a config; flatten it") from None
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


def check_schema(raw: dict[str, Any]) -> None:
    """Every check the YAML alone decides, before the experiment module (and torch with it) is imported: unknown
    keys, types and ranges of every shared section, the cross-field rules, and the space of the shared `train`
    section. Registry names (optimizer, schedule, search, scheduler, scoring) and the experiment's own sections wait
    for `validate_config`: their modules import torch, Ray or scikit-learn."""
    try:
        cfg = ExperimentConfig.model_validate(raw, context=SCHEMA_ONLY)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    if "train" in cfg.space:
        train = {"train": cfg.train.model_dump()}
        check_space({"train": cfg.space["train"]}, train, {"train": TrainConfig}, cfg.tune.search, SCHEMA_ONLY)


def validate_config(raw: dict[str, Any]) -> ExperimentConfig:
    from raytune_suite.experiments import load_experiment

    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    experiment = load_experiment(cfg.experiment)
    estimator = experiment.kind == "estimator"
    if estimator:
        check_estimator_settings(cfg)
    elif cfg.cv != CvSettings():  # not "cv" in the fields set: a saved or submitted config holds every section
        raise ConfigError(
            f"cv: {experiment.ref} trains a torch model on its own validation split; only estimator experiments "
            "(a module with build_estimator) cross-validate: remove the cv section"
        )
    # Checked, then resolved into a new config once (the checks change nothing): the experiment's defaults filled
    # into data and model, the objective's metric and direction, fifo for an estimator sweep.
    data = _validated_section(experiment.DataConfig, cfg.data, "data")
    model = _validated_section(experiment.ModelConfig, cfg.model, "model")
    metric, mode = resolved_objective(cfg.tune, experiment)
    tune = cfg.tune.model_copy(update={"metric": metric, "mode": mode, **({"scheduler": "fifo"} if estimator else {})})
    cfg = cfg.model_copy(update={"data": data, "model": model, "tune": tune})
    section_models = {"train": TrainConfig, "model": experiment.ModelConfig, "data": experiment.DataConfig}
    check_space(cfg.space, cfg.fixed_sections(), section_models, cfg.tune.search)
    _check_points(cfg)
    return cfg


def resolved_objective(tune: TuneSettings, experiment: Experiment) -> tuple[str, str]:
    """(tune.metric, tune.mode) as the sweep runs them: a metric the trials report (the experiment's own unless
    the config names one), in its own direction.

    An unreported metric fails every trial's first report; a loss maximised publishes the worst trial as the best.
    """
    from raytune_suite.experiments import better_when, describe_objectives

    objectives = experiment.objectives
    metric = tune.metric or experiment.metric
    if metric not in objectives:
        raise ConfigError(
            f"tune.metric: {metric} is not reported by {experiment.name}; "
            f"choose one of: {describe_objectives(objectives)}"
        )
    direction = objectives[metric]
    if tune.mode not in (None, direction):
        raise ConfigError(
            f"tune.mode: {tune.mode} would rank the trial with the {'highest' if tune.mode == 'max' else 'lowest'} "
            f"{metric} best, but {metric} is better when {better_when(direction)}: "
            f"set tune.mode={direction}, or remove it"
        )
    return metric, direction


def check_estimator_settings(cfg: ExperimentConfig) -> None:
    """What an estimator sweep cannot honour is an error (validate_config then runs it with fifo).

    An estimator trial reports once (its cross-validation), so there is no epoch to stop at, no training loop to
    tune and no DDP to split. Settings that are merely inert (train.*, tune.asha) are warnings (`ignored_train_keys`).
    """
    from raytune_suite.experiments import ESTIMATOR_METRIC, ESTIMATOR_MODE

    name, tune = cfg.experiment, cfg.tune
    if "train" in cfg.space:
        first = next(iter(cfg.space["train"]), "")
        raise ConfigError(
            f"space.train.{first}: estimator experiment {name} has no training loop to tune; "
            "tune its model: (or data:) fields"
        )
    if "scheduler" in tune.model_fields_set and tune.scheduler != "fifo":
        raise ConfigError(
            f"tune.scheduler: {tune.scheduler} stops or mutates trials between epochs, but an estimator trial "
            f"({name}) cross-validates once; remove it (estimator sweeps use fifo)"
        )
    if tune.workers_per_trial > 1:
        raise ConfigError(
            f"tune.workers_per_trial: {tune.workers_per_trial} splits a torch model over DDP workers; an estimator "
            "trial is one process: remove it (cross-validation uses the trial's tune.resources.cpu cores)"
        )
    if tune.metric not in (None, ESTIMATOR_METRIC):
        raise ConfigError(
            f"tune.metric: {tune.metric} is not reported; an estimator sweep optimises {ESTIMATOR_METRIC} "
            "(cv.scoring averaged over cv.folds): remove tune.metric, or choose cv.scoring"
        )
    if tune.mode not in (None, ESTIMATOR_MODE):
        raise ConfigError(
            f"tune.mode: {tune.mode}, but scikit-learn scorers are greater-is-better (losses are negated: "
            "neg_log_loss); remove tune.mode"
        )


# Settings of torch experiments that an estimator sweep never reads (tune.scheduler is fifo or an error).
_TORCH_ONLY_TUNE_KEYS = ("asha", "checkpoint_every")


def estimator_ignored_keys(cfg: ExperimentConfig) -> list[str]:
    """One warning line naming every torch-only setting an estimator config sets explicitly (inert there)."""
    keys = [f"train.{k}" for k in cfg.train.model_fields if k in cfg.train.model_fields_set]
    keys += [f"tune.{k}" for k in _TORCH_ONLY_TUNE_KEYS if k in cfg.tune.model_fields_set]
    if not keys:
        return []
    return [
        f"warning: {', '.join(keys)} mean nothing for estimator experiment {cfg.experiment} (scikit-learn fits it "
        "and each trial cross-validates once, with fifo); remove them"
    ]


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
    """HyperOpt needs complete seed points, which a conditional (tree-shaped) space cannot give. Random and grid
    search run a point in its branch (searchers.branch_point): a conditional parameter needs its parent in the
    point, set to a value where it exists, and a parent a value with a branch."""
    conditional = conditional_params(cfg.space)
    if cfg.tune.points_to_evaluate and cfg.tune.search == "hyperopt" and conditional:
        section, name = conditional[0]
        raise ConfigError(
            f"tune.points_to_evaluate[0]: spaces with conditional parameters ({section}.{name}) cannot be "
            "seeded; remove points_to_evaluate or the 'when'"
        )
    for i, point in enumerate(cfg.tune.points_to_evaluate):
        for section, values in point.items():
            params = cfg.space.get(section, {})
            for name, value in values.items():
                field, spec = f"tune.points_to_evaluate[{i}].{section}.{name}", params[name]
                if (section, name) in conditional and not spec.when and value not in spec.values:
                    raise ConfigError(f"{field}: {value!r} is not one of its values {spec.values}")
                if not spec.when:
                    continue
                ((parent, allowed),) = spec.when.items()
                if values.get(parent) not in allowed:
                    raise ConfigError(
                        f"{field}: exists only where {section}.{parent} is one of {allowed}; set {parent} to one "
                        f"of them in the same point, or remove {name}"
                    )


# A schedule function's keyword -> the train key it is filled from (`schedules.schedule_kwargs`); others: same name.
_SCHEDULE_ARG_KEYS = {"warmup": "warmup_epochs", "total": "epochs"}


def optimizer_keys() -> dict[str, tuple[str, ...]]:
    """Optimizer name -> the optimizer-specific train keys it reads (from `OptimizerSpec.reads`)."""
    from raytune_suite.train.optim import OPTIMIZERS

    return {name: spec.reads for name, spec in OPTIMIZERS.items()}


def schedule_keys() -> dict[str, tuple[str, ...]]:
    """Schedule name -> the train keys it reads besides epochs (from each schedule function's keywords)."""
    import inspect

    from raytune_suite.train.schedules import SCHEDULES

    keys = {}
    for name, fn in SCHEDULES.items():
        args = [p for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY]
        keys[name] = tuple(k for k in (_SCHEDULE_ARG_KEYS.get(a.name, a.name) for a in args) if k != "epochs")
    return keys


def ignored_tune_keys(cfg: ExperimentConfig) -> list[str]:
    """One warning per tune setting that the chosen searcher or scheduler never reads.

    Compared with the defaults, not `model_fields_set`: a saved or submitted config holds every field.
    """
    tune, warnings = cfg.tune, []
    for key in ("n_initial_points", "random_fraction"):
        if getattr(tune, key) != TuneSettings.model_fields[key].default and tune.search != "hyperopt":
            warnings.append(f"warning: tune.{key} is ignored by search {tune.search} (read by hyperopt)")
    if cfg.kind != "estimator" and tune.asha != AshaSettings() and tune.scheduler != "asha":
        warnings.append(f"warning: tune.asha is ignored by scheduler {tune.scheduler} (read by asha)")
    return warnings


def ignored_train_keys(cfg: ExperimentConfig) -> list[str]:
    """One warning per train key the config sets (fixed or tuned) that no optimizer or schedule it can run reads.

    `train.momentum` with `optimizer: adamw` trains exactly as without it, which the user did not mean. A tuned
    key with `when: {optimizer: [...]}` counts only for those optimizers. Warnings, not errors: the sweep is valid.
    """
    from raytune_suite.train.optim import OPTIMIZERS

    if cfg.kind == "estimator":
        return estimator_ignored_keys(cfg)
    tuned = cfg.space.get("train", {})
    rules = [("optimizer", optimizer_keys()), ("schedule", schedule_keys())]
    warnings = []
    for field, reads in rules:
        specific = sorted({k for keys in reads.values() for k in keys})
        runs = tuned[field].values if field in tuned else [getattr(cfg.train, field)]
        for key in specific:
            where = None
            if key in tuned:
                where = f"space.train.{key}"
                cond = tuned[key].when or {}
                candidates = [v for v in runs if v in cond[field]] if field in cond else runs
            elif key in cfg.train.model_fields_set:
                where, candidates = f"train.{key}", runs
            if where and not any(key in reads.get(name, ()) for name in candidates):
                names = ", ".join(str(v) for v in candidates) or "none"
                warnings.append(f"warning: {where} is ignored by {field} {names}")
    optimizers = tuned["optimizer"].values if "optimizer" in tuned else [cfg.train.optimizer]
    where = "space.train.batch_size" if "batch_size" in tuned else "train.batch_size"
    batch_size_set = "batch_size" in tuned or "batch_size" in cfg.train.model_fields_set
    if batch_size_set and all(OPTIMIZERS[name].full_batch for name in optimizers):
        warnings.append(f"warning: {where} is ignored by optimizer {', '.join(optimizers)} (full batch)")
    return warnings
