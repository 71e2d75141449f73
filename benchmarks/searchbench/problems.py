"""Benchmark problems: a search space, and for every configuration in it a per-epoch validation curve.

A *table* problem is one of the suite's own experiments trained once, every configuration of a discretised space
to its last epoch (`record.py` writes `tables/<name>.npz`); a *synthetic* problem (the multi-fidelity Hartmann
functions) computes its curve. Searchers see each table axis as the suite's YAML space DSL: a log- or
linear-spaced numeric axis as a `loguniform`/`uniform` range whose cells around the grid values are equally wide
(so random search draws each grid value equally often, and TPE still sees an ordered axis), a categorical one as a
`choice`; a sampled value is snapped to the nearest grid value before its curve is looked up.

Each problem knows its best value, its median configuration's value and its target (the value of the best 1 % of
configurations), which `stats.py` turns into normalised regret and time to target.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmarks.searchbench import hartmann

TABLES_DIR = Path(__file__).resolve().parent / "tables"
TOP_FRACTION = 0.01  # the target: a value only the best 1 % of configurations reach
SYNTHETIC_SAMPLES = 20_000  # Monte Carlo draws that stand for a synthetic problem's configurations


@dataclass(frozen=True)
class Axis:
    """One tuned parameter of a table: its grid values and how a searcher sees them.

    Args:
        path: `section.name`, e.g. `train.lr`.
        scale: `log` or `linear` (numeric, seen as a continuous range) or `choice` (categorical).
        values: the grid values, ascending for numeric scales.
        when: (sibling, values): the parameter exists only where its sibling takes one of these values.
    """

    path: str
    scale: Literal["log", "linear", "choice"]
    values: tuple[Any, ...]
    when: tuple[str, tuple[Any, ...]] | None = None

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.path.split(".", 1)[1]

    def _coords(self) -> np.ndarray:
        values = np.asarray(self.values, dtype=float)
        return np.log(values) if self.scale == "log" else values

    def spec(self) -> dict[str, Any]:
        """The parameter in the suite's YAML space DSL."""
        if self.scale == "choice":
            out: dict[str, Any] = {"type": "choice", "values": list(self.values)}
        else:
            coords = self._coords()
            # Half a cell beyond each end: every grid value then owns an equally wide cell of the range.
            low, high = coords[0] - (coords[1] - coords[0]) / 2, coords[-1] + (coords[-1] - coords[-2]) / 2
            if self.scale == "log":
                out = {"type": "loguniform", "low": float(math.exp(low)), "high": float(math.exp(high))}
            else:
                out = {"type": "uniform", "low": float(low), "high": float(high)}
        if self.when:
            out["when"] = {self.when[0]: list(self.when[1])}
        return out

    def snap(self, value: Any) -> Any:
        """The grid value a sampled value stands for."""
        if self.scale == "choice":
            return self.values[self.values.index(value)]  # the grid's own (plain Python) value, not numpy's
        x = math.log(value) if self.scale == "log" else float(value)
        return self.values[int(np.argmin(np.abs(self._coords() - x)))]


@dataclass(frozen=True)
class TableSpec:
    """How a table is recorded: which experiment, with which overrides, over which grid."""

    experiment: str
    axes: tuple[Axis, ...]
    overrides: tuple[str, ...] = ()
    about: str = ""

    def active(self, axis: Axis, config: dict[str, Any]) -> bool:
        if axis.when is None:
            return True
        sibling = f"{axis.section}.{axis.when[0]}"
        return config.get(sibling) in axis.when[1]

    def configs(self) -> list[dict[str, Any]]:
        """Every configuration of the grid ({path: value}, inactive conditional parameters left out), in order."""
        out = []
        for values in itertools.product(*(a.values for a in self.axes)):
            config = dict(zip((a.path for a in self.axes), values, strict=True))
            inactive = [a.path for a in self.axes if not self.active(a, config)]
            if any(config[p] != next(a for a in self.axes if a.path == p).values[0] for p in inactive):
                continue  # one representative per inactive branch
            out.append({k: v for k, v in config.items() if k not in inactive})
        return out

    def space(self) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for axis in self.axes:
            out.setdefault(axis.section, {})[axis.name] = axis.spec()
        return out

    def key(self, sections: dict[str, dict[str, Any]]) -> str:
        """The table row of a trial's resolved sections (`space.resolve_trial_config`): each value snapped."""
        snapped: dict[str, Any] = {}
        for axis in self.axes:
            value = sections.get(axis.section, {}).get(axis.name)
            if value is not None:
                snapped[axis.path] = axis.snap(value)
        return config_key({k: v for k, v in snapped.items() if self.active(self._axis(k), snapped)})

    def _axis(self, path: str) -> Axis:
        return next(a for a in self.axes if a.path == path)


def config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def _log(*values: float) -> tuple[float, ...]:
    return tuple(values)


# The recorded tables. Each space is the experiment's own, widened where the experiment's YAML already narrowed it
# (that is the point of tuning), and sized so `record.py` trains all of it in minutes on one CPU.
TABLES: dict[str, TableSpec] = {
    "mnist_cnn": TableSpec(
        experiment="mnist_cnn",
        overrides=("data.subset=2000",),
        about="CNN or MLP on 2,000 MNIST images (1,600 train / 400 validation), 8 epochs",
        axes=(
            Axis("train.lr", "log", _log(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
            Axis("train.optimizer", "choice", ("adamw", "nesterov")),
            Axis("train.weight_decay", "log", _log(1e-5, 1e-3, 1e-1)),
            Axis("model.arch", "choice", ("cnn", "mlp")),
            Axis("model.channels", "choice", (16, 32), when=("arch", ("cnn",))),
        ),
    ),
    "rt_transformer": TableSpec(
        experiment="rt_transformer",
        overrides=("model.d_model=32",),
        about="sentiment of 4,866 Rotten Tomatoes snippets: a Transformer or an n-gram embedding bag, 8 epochs",
        axes=(
            Axis("model.arch", "choice", ("transformer", "embedding_bag")),
            Axis("model.layers", "choice", (1, 2), when=("arch", ("transformer",))),
            Axis("model.ngrams", "choice", (1, 2), when=("arch", ("embedding_bag",))),
            Axis("model.embed_dim", "choice", (16, 32), when=("arch", ("embedding_bag",))),
            Axis("train.lr", "log", _log(1e-3, 3e-3, 1e-2)),
            Axis("train.weight_decay", "log", _log(1e-3, 3e-2, 0.5)),
        ),
    ),
    "movielens_mf": TableSpec(
        experiment="movielens_mf",
        about="biased matrix factorisation on MovieLens-100K (80,000 train / 20,000 validation ratings), 10 epochs",
        axes=(
            Axis("train.lr", "log", _log(1e-3, 3e-3, 1e-2, 3e-2, 1e-1)),
            Axis("train.optimizer", "choice", ("adam", "adagrad")),
            Axis("train.l2", "log", _log(3e-3, 3e-2, 0.3, 3.0)),
            Axis("model.dim", "choice", (16, 32, 64)),
        ),
    ),
    "diabetes_linear": TableSpec(
        experiment="diabetes_linear",
        about="linear model by batch gradient descent + L2 on scikit-learn's diabetes data, 200 epochs",
        axes=(
            Axis("train.l2", "log", _log(1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3)),
            Axis("train.lr", "log", _log(0.01, 0.03, 0.1, 0.3, 0.6)),
            Axis("train.schedule", "choice", ("constant", "time", "exponential", "step")),
            Axis("train.decay_rate", "log", _log(1e-3, 1e-2, 1e-1), when=("schedule", ("time", "exponential"))),
            Axis("train.step_size", "choice", (25, 50, 100), when=("schedule", ("step",))),
        ),
    ),
    "mnist_mlp_wide": TableSpec(
        experiment="mnist_cnn",
        overrides=("data.subset=2000", "model.arch=mlp"),
        about="a space where a good config is rare: an MLP on 2,000 MNIST images, six optimizers and four "
        "schedules over wide lr and weight-decay ranges, 8 epochs",
        axes=(
            Axis("train.optimizer", "choice", ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad")),
            Axis("train.lr", "log", _log(1e-5, 5e-5, 2.5e-4, 1.25e-3, 6.25e-3, 3.125e-2, 0.15625, 0.78125)),
            Axis("train.weight_decay", "log", _log(1e-6, 1e-4, 1e-2, 1.0)),
            Axis("train.schedule", "choice", ("constant", "step", "cosine", "warmup_cosine")),
        ),
    ),
}
# The ASHA settings of each table's experiment YAML (grace period, reduction factor); epochs likewise.
EXPERIMENT_SCHEDULE = {
    "mnist_cnn": (8, 1, 3.0),
    "rt_transformer": (8, 2, 3.0),
    "movielens_mf": (10, 1, 3.0),
    "diabetes_linear": (200, 20, 3.0),
}


@dataclass
class Problem:
    """What the simulator and the statistics need of a problem.

    Args:
        name: the problem's name (a table's file stem, or `mfh3_good`, ...).
        metric / mode: the objective, as the suite's `tune.metric` / `tune.mode`.
        epochs: a full training (ASHA's max_t).
        grace_period / reduction_factor: ASHA's settings, as the experiment's YAML has them.
        space: the search space in the suite's YAML DSL ({section: {name: spec}}).
        bests: every configuration's best value over its epochs (a synthetic problem: a Monte Carlo sample).
        optimum: the best value any configuration reaches.
    """

    name: str
    metric: str
    mode: Literal["min", "max"]
    epochs: int
    grace_period: int
    reduction_factor: float
    space: dict[str, dict[str, dict[str, Any]]]
    bests: np.ndarray = field(repr=False)
    optimum: float
    about: str = ""

    def curve(self, sections: dict[str, dict[str, Any]]) -> tuple[np.ndarray, float]:
        """(the metric after each epoch, seconds one epoch takes) of a trial's resolved sections."""
        raise NotImplementedError

    @property
    def sign(self) -> int:
        """+1 where higher is better."""
        return 1 if self.mode == "max" else -1

    @cached_property
    def median(self) -> float:
        return float(np.median(self.bests))

    @cached_property
    def target(self) -> float:
        """The value the best 1 % of configurations reach (at least the best one)."""
        ordered = np.sort(self.sign * self.bests)[::-1]
        k = max(1, math.ceil(TOP_FRACTION * len(ordered)))
        return float(self.sign * ordered[k - 1])

    def regret(self, value: float | None) -> float:
        """Normalised regret: 0 at the optimum, 1 at the median configuration (more below it); 1 with no value."""
        if value is None or not math.isfinite(value):
            return 1.0
        return max(0.0, self.sign * (self.optimum - value) / (self.sign * (self.optimum - self.median)))


class TableProblem(Problem):
    """A recorded table: `tables/<name>.npz`, written by `record.py` from `TABLES[name]`."""

    def __init__(self, name: str, path: Path | None = None):
        path = path or TABLES_DIR / f"{name}.npz"
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            self.values = data["values"].astype(np.float64)  # configs × epochs
            self.seconds = data["seconds"].astype(np.float64)  # seconds per epoch, per config
        self.spec = table_spec_from_json(meta["spec"])
        self.rows = {config_key(c): i for i, c in enumerate(meta["configs"])}
        finite = np.where(np.isfinite(self.values), self.values, -np.inf * (1 if meta["mode"] == "max" else -1))
        bests = finite.max(axis=1) if meta["mode"] == "max" else finite.min(axis=1)
        super().__init__(
            name=name,
            metric=meta["metric"],
            mode=meta["mode"],
            epochs=self.values.shape[1],
            grace_period=meta["grace_period"],
            reduction_factor=meta["reduction_factor"],
            space=self.spec.space(),
            bests=bests,
            optimum=float(bests.max() if meta["mode"] == "max" else bests.min()),
            about=self.spec.about,
        )
        self.meta = meta

    def row(self, sections: dict[str, dict[str, Any]]) -> int:
        return self.rows[self.spec.key(sections)]

    def curve(self, sections):
        i = self.row(sections)
        return self.values[i], float(self.seconds[i])


class HartmannProblem(Problem):
    """The multi-fidelity Hartmann function (`hartmann.py`): epoch e of `epochs` is fidelity z(e), spaced
    evenly from 3 (mf-prior-bench's lowest) to 100; every epoch costs one second."""

    def __init__(self, dims: int, preset: str, epochs: int = 27):
        self.dims, (self.bias, self.noise) = dims, hartmann.PRESETS[preset]
        self.fidelities = np.linspace(3, hartmann.Z_MAX, epochs)
        sample = np.random.default_rng(0).random((SYNTHETIC_SAMPLES, dims))
        bests = hartmann.hartmann(sample, np.full(len(sample), float(hartmann.Z_MAX)), self.bias, self.noise)
        super().__init__(
            name=f"mfh{dims}_{preset}",
            metric="value",
            mode="min",
            epochs=epochs,
            grace_period=1,
            reduction_factor=3.0,
            space={"model": {f"x{i}": {"type": "uniform", "low": 0.0, "high": 1.0} for i in range(dims)}},
            bests=bests,
            optimum=hartmann.MINIMUM[dims],
            about=f"Hartmann {dims}-D, mf-prior-bench's '{preset}' bias {self.bias} and noise {self.noise}, "
            f"{epochs} fidelities",
        )

    def curve(self, sections):
        x = np.array([sections["model"][f"x{i}"] for i in range(self.dims)])
        points = np.repeat(x[None, :], len(self.fidelities), axis=0)
        return hartmann.hartmann(points, self.fidelities, self.bias, self.noise), 1.0


def table_spec_to_json(spec: TableSpec) -> dict[str, Any]:
    return {
        "experiment": spec.experiment,
        "overrides": list(spec.overrides),
        "about": spec.about,
        "axes": [
            {
                "path": a.path,
                "scale": a.scale,
                "values": list(a.values),
                "when": [a.when[0], list(a.when[1])] if a.when else None,
            }
            for a in spec.axes
        ],
    }


def table_spec_from_json(raw: dict[str, Any]) -> TableSpec:
    axes = tuple(
        Axis(a["path"], a["scale"], tuple(a["values"]), (a["when"][0], tuple(a["when"][1])) if a["when"] else None)
        for a in raw["axes"]
    )
    return TableSpec(experiment=raw["experiment"], axes=axes, overrides=tuple(raw["overrides"]), about=raw["about"])


SYNTHETIC = {
    "mfh3_good": lambda: HartmannProblem(3, "good"),
    "mfh3_terrible": lambda: HartmannProblem(3, "terrible"),
    "mfh6_good": lambda: HartmannProblem(6, "good"),
    "mfh6_terrible": lambda: HartmannProblem(6, "terrible"),
}


def load_problem(name: str) -> Problem:
    if name in SYNTHETIC:
        return SYNTHETIC[name]()
    if name in TABLES:
        return TableProblem(name)
    raise KeyError(f"unknown problem {name!r}; the problems are: {', '.join([*TABLES, *SYNTHETIC])}")
