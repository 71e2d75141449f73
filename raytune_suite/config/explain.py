"""The config reference, generated from the typed models: every key of every section with its type, default,
allowed values and description.

`raytune-suite validate --explain` prints it and `docs/config-reference.md` is its output (a test keeps the file
equal to it, and fails when a field has no `description`). The text comes from `config.py` (the models and their
`Field(description=...)`), `space.ParamSpec` and the registries (optimizers, schedules, searchers, schedulers),
so adding a key or a registry entry changes the reference with no second place to edit.
"""

from __future__ import annotations

import importlib
import types
import typing
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from raytune_suite.config import (
    AshaSettings,
    CvSettings,
    ExperimentConfig,
    MlflowSettings,
    Resources,
    RunSettings,
    TrainConfig,
    TuneSettings,
    optimizer_keys,
    schedule_keys,
)
from raytune_suite.config.space import ParamSpec

# (heading, key prefix, model): the order sections appear in, as in a YAML.
SECTIONS: list[tuple[str, str, type[BaseModel]]] = [
    ("Top level", "", ExperimentConfig),
    ("train", "train.", TrainConfig),
    ("cv", "cv.", CvSettings),
    ("tune", "tune.", TuneSettings),
    ("tune.asha", "tune.asha.", AshaSettings),
    ("tune.resources", "tune.resources.", Resources),
    ("mlflow", "mlflow.", MlflowSettings),
    ("run", "run.", RunSettings),
    ("space: one parameter", "space.SECTION.NAME.", ParamSpec),
]

# Defaults that a loader fills in, not the model.
_DEFAULT_TEXT = {("", "name"): "the YAML file's stem"}

_INTRO = """\
# Config reference

Generated from the typed models in `raytune_suite/config/__init__.py` and `raytune_suite/config/space.py` by
`raytune-suite validate --explain`; `tests/unit/test_config_reference.py` keeps this file equal to that output.
Unknown keys are errors. `--set KEY=VALUE` overrides any key (the value is parsed as YAML). The `data:` and
`model:` sections hold the experiment's own `DataConfig` / `ModelConfig` fields: see the experiment module and
[writing-an-experiment.md](writing-an-experiment.md).
"""


def reference() -> str:
    """The whole reference as Markdown."""
    parts = [_INTRO]
    for heading, prefix, model in SECTIONS:
        parts.append(f"## {heading}\n")
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            parts.append(" ".join(doc.split()) + "\n")
        parts.append("| key | type | default | allowed | description |\n|---|---|---|---|---|")
        for name, field in model.model_fields.items():
            row = [
                f"`{prefix}{name}`",
                _type(field.annotation),
                _DEFAULT_TEXT.get((prefix, name)) or _default(field),
                _allowed(prefix, name, field),
                _escape(field.description or ""),
            ]
            parts.append("| " + " | ".join(row) + " |")
        parts.append("")
    parts.append(_registries())
    return "\n".join(parts).rstrip("\n") + "\n"


def missing_descriptions() -> list[str]:
    """Every key of the reference whose field has no description."""
    return [
        f"{prefix}{name}"
        for _, prefix, model in SECTIONS
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]


def _registries() -> str:
    from raytune_suite.train.optim import OPTIMIZERS
    from raytune_suite.train.schedules import SCHEDULES

    reads = optimizer_keys()
    lines = [
        "## Optimizers and the keys they read\n",
        "Every optimizer reads `lr`, `weight_decay` and `decay_norms_and_biases`. A key set for an optimizer or "
        "schedule that does not read it is a warning at `validate` and `run`; so are `tune.n_initial_points` with a "
        "searcher other than hyperopt, and `tune.asha` other than its defaults with a scheduler other than asha.\n",
        "| `train.optimizer` | what it is | also reads |\n|---|---|---|",
    ]
    for name, spec in OPTIMIZERS.items():
        extra = [f"`{k}`" for k in reads[name]]
        summary = spec.summary + (" (full batch: ignores `batch_size`)" if spec.full_batch else "")
        lines.append(f"| `{name}` | {summary} | {', '.join(extra) or '—'} |")
    lines += ["", "## Schedules and the keys they read\n", "| `train.schedule` | factor of lr at epoch t | reads |"]
    lines.append("|---|---|---|")
    for name, fn in SCHEDULES.items():
        doc = " ".join((fn.__doc__ or "1").strip().split("\n\n")[0].split())
        keys = [f"`{k}`" for k in schedule_keys()[name]]
        lines.append(f"| `{name}` | {_escape(doc)} | {', '.join(keys) or '—'} |")
    return "\n".join(lines) + "\n"


def _type(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is Literal:
        return "str"
    if origin is dict:
        return "mapping"
    if origin is list:
        return "list"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "(section)" if isinstance(value, BaseModel) else f"`{_yaml(value)}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{_yaml(field.default)}`"


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"' if value == "" else value
    return str(value)


_BOUNDS = {
    annotated_types.Ge: ("≥", "ge"),
    annotated_types.Gt: (">", "gt"),
    annotated_types.Le: ("≤", "le"),
    annotated_types.Lt: ("<", "lt"),
}


def _allowed(prefix: str, name: str, field: FieldInfo) -> str:
    if (prefix, name) == ("", "space"):
        return "sections `train`, `model`, `data`"
    literals = [a for a in _flat_args(field.annotation) if typing.get_origin(a) is Literal]
    if literals:
        return ", ".join(f"`{v}`" for lit in literals for v in typing.get_args(lit))
    registry = _registry_names(prefix, name)
    if registry:
        return ", ".join(f"`{v}`" for v in registry)
    bounds = []
    for meta in field.metadata:
        for kind, (symbol, attr) in _BOUNDS.items():
            if isinstance(meta, kind):
                bounds.append(f"{symbol} {getattr(meta, attr)}")
    return ", ".join(bounds)


def _flat_args(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _flat_args(arg)]
    return [annotation]


# Keys whose allowed values are a registry's names, as `module:NAME` (imported only here).
_REGISTRIES = {
    ("train.", "optimizer"): "raytune_suite.train.optim:OPTIMIZERS",
    ("train.", "schedule"): "raytune_suite.train.schedules:SCHEDULES",
    ("tune.", "search"): "raytune_suite.search.searchers:SEARCHERS",
    ("tune.", "scheduler"): "raytune_suite.search.schedulers:SCHEDULERS",
}


def _registry_names(prefix: str, name: str) -> list[str]:
    registry = _REGISTRIES.get((prefix, name))
    if registry is None:
        return []
    module, _, attr = registry.partition(":")
    return list(getattr(importlib.import_module(module), attr))


def _escape(text: str) -> str:
    return text.replace("|", "\\|")
