"""The YAML search-space DSL and its translation to Ray Tune domains.

A parameter is one mapping under `space.<section>.<name>`:

    lr:        {type: loguniform, low: 1.0e-4, high: 1.0e-1}
    width:     {type: quniform, low: 16, high: 128, q: 16}
    layers:    {type: randint, low: 1, high: 4}            # high exclusive, as in Ray Tune
    optimizer: {type: choice, values: [sgd, momentum, adamw]}
    momentum:  {type: uniform, low: 0.5, high: 0.99, when: {optimizer: [momentum]}}
    batch:     {type: grid, values: [32, 64]}              # search: grid or random

A conditional parameter (`when`) exists only in trials where a sibling `choice`/`grid` parameter takes one of
the listed values. It is translated into a choice of branches, `{"_value": v, "momentum@v": domain}`, which
HyperOpt turns into a real tree-structured space (TPE models momentum only where it matters) and Ray's variant
generator samples the same way; the `@v` suffix keeps HyperOpt's labels unique across branches.
`resolve_trial_config` turns a trial's sampled config back into plain nested sections.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from raytune_suite.config.objective import is_number
from raytune_suite.errors import ConfigError

SECTIONS = ("data", "model", "train")
BRANCH_VALUE = "_value"

ParamType = Literal["uniform", "loguniform", "quniform", "qloguniform", "randint", "choice", "grid"]
CATEGORICAL = {"choice", "grid"}
CONTINUOUS = {"uniform", "loguniform"}  # drawn from [low, high): never high itself


class ParamSpec(BaseModel):
    """One tunable parameter of the search space."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: ParamType = Field(
        description="how values are drawn: uniform, loguniform, quniform, qloguniform (low/high), randint (high "
        "exclusive), choice (values), grid (values; tried each, search grid or random)"
    )
    low: float | None = Field(None, description="lower bound (numeric types); > 0 for log scales")
    high: float | None = Field(None, description="upper bound (numeric types); exclusive for randint")
    q: float | None = Field(None, description="step of quniform / qloguniform: values are rounded to multiples of q")
    values: list[Any] | None = Field(None, description="the candidates of choice / grid")
    when: dict[str, list[Any]] | None = Field(
        None, description="conditional: {sibling choice parameter: [values]}; the parameter exists only there"
    )

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> ParamSpec:
        if self.when is not None and len(self.when) != 1:
            raise ValueError("'when' names exactly one parameter, e.g. when: {optimizer: [sgd]}")
        if self.type in CATEGORICAL:
            if not self.values:
                raise ValueError(f"type {self.type} needs a non-empty 'values' list")
            if self.low is not None or self.high is not None:
                raise ValueError(f"type {self.type} takes 'values', not low/high")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"type {self.type} needs both 'low' and 'high'")
        if self.values is not None:
            raise ValueError(f"type {self.type} takes low/high, not 'values'")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be < high ({self.high:g})")
        if self.type in ("loguniform", "qloguniform") and self.low <= 0:
            raise ValueError(f"low ({self.low:g}) must be > 0 for a log scale")
        if self.type.startswith("q") and (self.q is None or self.q <= 0):
            raise ValueError(f"type {self.type} needs a step 'q' > 0")
        if self.type == "randint" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("randint needs whole numbers for low and high")
        return self

    def candidates(self) -> list[Any]:
        """Values a trial can see, enough to validate the space against the config models."""
        if self.type in CATEGORICAL:
            return list(self.values)
        if self.type == "randint":
            return [int(self.low), int(self.high) - 1]
        return [self.low, self.high]

    def enumerated(self, grid: bool) -> bool:
        """Tried value by value: `type: grid` always, `choice` too under exhaustive grid search."""
        return self.type == "grid" or (grid and self.type == "choice")

    def to_domain(self, grid: bool = False) -> Any:
        """The Ray Tune domain; with `grid` (tune.search: grid) a choice is enumerated, not sampled."""
        from ray import tune

        if self.enumerated(grid):
            return tune.grid_search(self.values)
        if self.type == "choice":
            return tune.choice(self.values)
        if self.type == "randint":
            return tune.randint(int(self.low), int(self.high))
        if self.type == "quniform":
            return tune.quniform(self.low, self.high, self.q)
        if self.type == "qloguniform":
            return tune.qloguniform(self.low, self.high, self.q)
        return getattr(tune, self.type)(self.low, self.high)


def conditional_params(space: dict[str, dict[str, ParamSpec]]) -> list[tuple[str, str]]:
    """(section, name) of every parameter that is conditional or that another parameter's `when` names."""
    return [
        (section, name)
        for section, params in space.items()
        for name, spec in params.items()
        if spec.when or any(s.when and name in s.when for s in params.values())
    ]


def _condition(spec: ParamSpec) -> tuple[str, list[Any]] | None:
    return next(iter(spec.when.items())) if spec.when else None


def check_space(
    space: dict[str, dict[str, ParamSpec]],
    fixed: dict[str, dict[str, Any]],
    models: dict[str, type[BaseModel]],
    search: str,
    context: dict[str, Any] | None = None,
) -> None:
    """Reject a space that names unknown fields, holds invalid values, or mixes types the searcher can't use.

    `context` is pydantic's validation context for the section models (config.SCHEMA_ONLY: no registry imports)."""
    for section, params in space.items():
        for name, spec in params.items():
            field = f"space.{section}.{name}"
            if name not in models[section].model_fields:
                valid = ", ".join(models[section].model_fields)
                raise ConfigError(f"{field}: {section} has no parameter {name!r}; valid: {valid}")
            if spec.type == "grid" and search == "hyperopt":
                raise ConfigError(f"{field}: type grid needs tune.search grid or random; use type choice")
            if search == "grid" and spec.type not in CATEGORICAL:
                raise ConfigError(f"{field}: tune.search grid needs type grid or choice, not {spec.type}")
            _check_condition(field, name, spec, params)
            for value in spec.candidates():
                _check_value(field, models[section], {**fixed[section], name: value}, context)


def _check_condition(field: str, name: str, spec: ParamSpec, params: dict[str, ParamSpec]) -> None:
    cond = _condition(spec)
    if cond is None:
        return
    parent_name, values = cond
    if parent_name == name:  # before the parent's checks: the parent *is* this (conditional) parameter
        raise ConfigError(f"{field}.when: a parameter cannot depend on itself; name a sibling choice parameter")
    parent = params.get(parent_name)
    if parent is None or parent.type not in CATEGORICAL:
        raise ConfigError(f"{field}.when: {parent_name!r} must be a choice or grid parameter in the same section")
    if parent.when:
        raise ConfigError(f"{field}.when: {parent_name!r} is itself conditional; nest only one level")
    unknown = [v for v in values if v not in parent.values]
    if unknown:
        raise ConfigError(f"{field}.when: {unknown} are not values of {parent_name} ({parent.values})")


def _check_value(field: str, model: type[BaseModel], values: dict[str, Any], context: dict[str, Any] | None) -> None:
    try:
        model.model_validate(values, context=context)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"{field}: {first['msg'].removeprefix('Value error, ')}") from None


def build_param_space(
    fixed: dict[str, dict[str, Any]], space: dict[str, dict[str, ParamSpec]], grid: bool = False
) -> dict[str, dict[str, Any]]:
    """Fixed values with Ray Tune domains substituted for every tuned parameter (conditionals as branches).

    `grid` (tune.search: grid): every categorical parameter is enumerated, so one pass is the exhaustive grid of
    the categorical values, a conditional one only inside its branch, each combination exactly once."""
    out = {section: dict(values) for section, values in fixed.items()}
    for section, params in space.items():
        children: dict[str, dict[str, ParamSpec]] = {}
        for name, spec in params.items():
            cond = _condition(spec)
            if cond:
                children.setdefault(cond[0], {})[name] = spec
            else:
                out[section][name] = spec.to_domain(grid)
        for parent_name, kids in children.items():
            out[section][parent_name] = _branches(params[parent_name], kids, grid)
    return out


def _branches(parent: ParamSpec, kids: dict[str, ParamSpec], grid: bool) -> Any:
    from ray import tune

    branches = []
    for value in parent.values:
        branch: dict[str, Any] = {BRANCH_VALUE: value}
        for name, spec in kids.items():
            if value in _condition(spec)[1]:
                branch[f"{name}@{value}"] = spec.to_domain(grid)
        branches.append(branch)
    return tune.grid_search(branches) if parent.enumerated(grid) else tune.choice(branches)


def resolve_trial_config(sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A trial's sampled sections as plain values: branches flattened, quantized ints made ints."""
    out: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        values: dict[str, Any] = {}
        active_children: dict[str, Any] = {}
        for name, value in sections.get(section, {}).items():
            if isinstance(value, dict) and BRANCH_VALUE in value:
                values[name] = value[BRANCH_VALUE]
                for key, child in value.items():
                    if key != BRANCH_VALUE:
                        active_children[key.split("@", 1)[0]] = child
            else:
                values[name] = value
        out[section] = {**values, **active_children}  # a sampled child beats its fixed default
    return out


def grid_size(space: dict[str, dict[str, ParamSpec]], grid: bool = False) -> int:
    """How many configurations one pass over the enumerated parameters makes (1 without any); `grid` as in
    `build_param_space`."""
    sizes = []
    for params in space.values():
        for name, spec in params.items():
            if not spec.enumerated(grid) or spec.when:
                continue
            kids = [s for s in params.values() if (c := _condition(s)) and c[0] == name]
            sizes.append(sum(_branch_size(v, kids, grid) for v in spec.values))
    return math.prod(sizes) if sizes else 1


def _branch_size(value: Any, kids: list[ParamSpec], grid: bool) -> int:
    active = [k for k in kids if value in _condition(k)[1] and k.enumerated(grid)]
    return math.prod(len(k.values) for k in active) if active else 1


def longest_value(spec: ParamSpec) -> float | None:
    """The largest number a numeric parameter can take (randint's high is exclusive); None if it has none."""
    if spec.values is not None:
        numbers = [v for v in spec.values if is_number(v)]
        return max(numbers, default=None)
    return spec.high - 1 if spec.type == "randint" else spec.high
