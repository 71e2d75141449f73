"""Tuning efficiency: how good a config each search strategy finds for how many trial-epochs (issue #10, item 3).

For one experiment, every strategy runs at the same budget over `--seeds` values of `tune.seed` (the searcher's
and torch's seed), with `tune.split_seed=0` fixed so every run is scored on the same validation split (or folds):

- grid + FIFO: the exhaustive grid of a *discretised* space: each continuous parameter becomes a `choice` of
  `--points` values (log-spaced for log scales, evenly spaced otherwise, rounded to 4 significant digits; quantized
  and integer ones rounded to their step, duplicates dropped); `choice` and `grid` parameters keep their values;
  conditional parameters keep their `when`. The discretisation is printed and logged.
- random + FIFO, random + ASHA, HyperOpt + FIFO, HyperOpt + ASHA: `--num-samples` trials each (default: the
  experiment's own `tune.num_samples`), on the same discretised space (`--space discrete`, the default: every
  strategy then draws from the grid's configs) or on the experiment's original space (`--space original`).
- Optuna (torch experiments): the peer a single-machine user would pick instead, `TPESampler(seed=tune.seed,
  n_startup_trials=6)` with `SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)`, `--num-samples` trials
  in 2 threads (one torch thread each, as a 1-CPU trial) on the same discretised space, split and training loop
  (the suite's `build_training`, `train_epoch` and `evaluate`, called in-process: no Ray, no MLflow). Needs
  `pip install -e '.[bench]'`; without it that strategy is skipped and the script says so.
- an estimator experiment (rt_logreg: one cross-validation per trial, no epochs) runs grid and random + FIFO only,
  ASHA meaning nothing there, and scikit-learn's GridSearchCV itself on the same folds (n_jobs=1, the faster one
  on 2 CPUs: README); its default budget for random search is half the grid.

Each sweep runs through `run_sweep` (as `raytune-suite run` does after its preflight) in its own process, with its
own temporary folder, SQLite store and Ray instance on `--num-cpus` CPUs. Per strategy: the best metric (median,
min and max over seeds), trial-epochs spent (every result a trial reported, i.e. epochs actually trained, counted
from each trial's result.json; one per cross-validation for an estimator) and wall seconds (run_sweep's, Ray's
start and the report included). Best-so-far vs cumulative trial-epochs (trials ordered by the time of their last
result: their result.json's modification time; a trial's value is its best epoch, as the sweep's report counts it)
goes to a plot with the median over seeds and the min-max band, and a second table gives each strategy's best so far
once it had spent 5, 10 and 20 % of the grid's trial-epochs (equal compute rather than equal trials). Then HyperOpt
against random search (and against Optuna), seed by seed: wins, ties, losses, the median difference and the sign
test's p. `--noise N` trains the experiment's own config N times, torch seeded 0..N-1, on the same split: a
difference between strategies smaller than that spread is the training seed's luck, not the searcher's doing.
`results.csv` (a row per strategy and seed), `curves.csv`, `anytime.png`, `summary.txt` (the tables and lines above)
and `noise.json` go into `--out`, and to a parent MLflow run (experiment "tuning_efficiency", a child run per
strategy and seed holding its curve as the metric `best_so_far` with the cumulative trial-epochs as step) in
`--mlflow-uri`.

    python benchmarks/tuning_efficiency.py --experiment diabetes_linear --seeds 3
    python benchmarks/tuning_efficiency.py --experiment mnist_cnn --seeds 3 --grid-seeds 1   # ~35 min here
    python benchmarks/tuning_efficiency.py --experiment rt_logreg --seeds 1
    python benchmarks/tuning_efficiency.py --experiment diabetes_linear --quick --seeds 1   # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("mnist_cnn", "diabetes_linear", "rt_logreg")
SIGNIFICANT = 4  # digits kept of a discretised value: 3.162, not 3.1622776601683795
GRIDSEARCHCV = "GridSearchCV"
OPTUNA = "optuna-tpe+sha"
OPTUNA_STARTUP_TRIALS = 6  # TPE's random start: Optuna's default is 10, too many of a 20-trial budget
# name: (tune.search, tune.scheduler); the grid first: the others' trial-epochs are reported as a share of its.
STRATEGIES = {
    "grid+fifo": ("grid", "fifo"),
    "random+fifo": ("random", "fifo"),
    "random+asha": ("random", "asha"),
    "hyperopt+fifo": ("hyperopt", "fifo"),
    "hyperopt+asha": ("hyperopt", "asha"),
}
ESTIMATOR_STRATEGIES = ("grid+fifo", "random+fifo", GRIDSEARCHCV)


# -- pure helpers (tests/unit/test_tuning_efficiency.py) --------------------------------------------------------
def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT}g}")


def discrete_values(spec: dict[str, Any], points: int) -> list[Any]:
    """`points` values standing for one parameter of the YAML space DSL (a dict as in the YAML); categorical
    parameters keep their own values."""
    kind = spec["type"]
    if kind in ("choice", "grid"):
        return list(spec["values"])
    low, high = spec["low"], spec["high"]
    if kind == "randint":  # high exclusive
        ints = list(range(int(low), int(high)))
        if len(ints) <= points:
            return ints
        return sorted({ints[round(i * (len(ints) - 1) / (points - 1))] for i in range(points)})
    if points == 1:
        raw = [math.sqrt(low * high) if "log" in kind else (low + high) / 2]
    elif "log" in kind:
        raw = [math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (points - 1)) for i in range(points)]
    else:
        raw = [low + i * (high - low) / (points - 1) for i in range(points)]
    if kind.startswith("q"):
        q = spec["q"]
        values = [_rounded(min(max(round(v / q) * q, low), high)) for v in raw]
        return list(dict.fromkeys(int(v) if float(q).is_integer() else v for v in values))
    return list(dict.fromkeys(_rounded(v) for v in raw))


def discretise_space(space: dict[str, dict[str, dict[str, Any]]], points: int) -> dict[str, dict[str, dict]]:
    """The space with every parameter a `choice` (conditions kept): its grid is what `search: grid` enumerates,
    and random and HyperOpt sample from the same configs."""
    out: dict[str, dict[str, dict]] = {}
    for section, params in space.items():
        for name, spec in params.items():
            new: dict[str, Any] = {"type": "choice", "values": discrete_values(spec, points)}
            if spec.get("when"):
                new["when"] = spec["when"]
            out.setdefault(section, {})[name] = new
    return out


def describe_discretisation(space: dict[str, dict[str, dict[str, Any]]], points: int) -> list[str]:
    """One line per parameter: its original domain and the values that stand for it."""
    lines = []
    for section, params in space.items():
        for name, spec in params.items():
            if spec["type"] in ("choice", "grid"):
                domain = f"{spec['type']} {spec['values']}"
            else:
                domain = f"{spec['type']} [{spec['low']:g}, {spec['high']:g}]" + (
                    f" q={spec['q']:g}" if spec.get("q") else ""
                )
            when = f" (when {spec['when']})" if spec.get("when") else ""
            lines.append(f"{section}.{name}: {domain} -> {discrete_values(spec, points)}{when}")
    return lines


@dataclass(frozen=True)
class Trial:
    """What the anytime curve needs of one trial: when it ended, epochs it trained, its best value."""

    end: float
    epochs: int
    best: float | None  # None: it never reported the metric (failed before its first epoch)


def trial_from_results(results: Iterable[dict[str, Any]], metric: str, mode: str, end: float) -> Trial:
    """A trial from its reported results (result.json's lines): every result is one epoch trained."""
    results = list(results)
    values = [r[metric] for r in results if isinstance(r.get(metric), int | float) and math.isfinite(r[metric])]
    best = (min(values) if mode == "min" else max(values)) if values else None
    return Trial(end=end, epochs=len(results), best=best)


def read_trials(sweep_dir: str | Path, metric: str, mode: str) -> list[Trial]:
    """Every trial of a finished sweep folder, from its `<trial>/result.json` (end: the file's last write)."""
    trials = []
    for path in sorted(Path(sweep_dir).glob("*/result.json")):
        results = []
        for line in path.read_text().splitlines():
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:  # blank, or the last line of a driver killed mid-write
                continue
        trials.append(trial_from_results(results, metric, mode, path.stat().st_mtime))
    return trials


def trial_epochs(trials: Sequence[Trial]) -> int:
    return sum(t.epochs for t in trials)


def best_so_far(trials: Sequence[Trial], mode: str) -> list[tuple[int, float | None]]:
    """(cumulative trial-epochs, best value so far) after each trial, trials in the order they ended."""
    better = min if mode == "min" else max
    curve, spent, best = [], 0, None
    for trial in sorted(trials, key=lambda t: t.end):
        spent += trial.epochs
        if trial.best is not None:
            best = trial.best if best is None else better(best, trial.best)
        curve.append((spent, best))
    return curve


def curve_at(curve: Sequence[tuple[int, float | None]], xs: Sequence[float]) -> list[float | None]:
    """The step curve's value at each x: the best after the last trial that ended within x trial-epochs."""
    out, i, value = [], 0, None
    for x in xs:  # xs ascending
        while i < len(curve) and curve[i][0] <= x:
            value = curve[i][1]
            i += 1
        out.append(value)
    return out


def spread(values: Iterable[float | None]) -> tuple[float, float, float] | None:
    """(median, min, max) of the values present; None if there are none."""
    present = [v for v in values if v is not None]
    return (statistics.median(present), min(present), max(present)) if present else None


# -- one sweep or one GridSearchCV, in its own process ----------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """`--child`: run one sweep with the JSON-encoded `--set` overrides; its figures as the last stdout line."""
    from raytune_suite.config import load_config
    from raytune_suite.run.sweep import run_sweep

    overrides = json.loads(args.child)
    cfg = load_config(config_path(args.experiment), overrides)
    result = run_sweep(cfg, storage="ray_results", num_cpus=args.num_cpus)
    print(json.dumps({"trials": result.trials, "failed": result.failed, "best": result.best_value,
                      "wall_s": result.wall_s, "fit_s": result.fit_s, "sweep_dir": result.storage_path}))  # fmt: skip


def gridsearchcv_child(args: argparse.Namespace) -> None:
    """`--gridsearchcv`: GridSearchCV over the grid on the suite's folds, as benchmarks/sklearn_gridsearch.py."""
    import importlib.util

    from sklearn.model_selection import GridSearchCV

    from raytune_suite.config import load_config
    from raytune_suite.experiments import load_experiment
    from raytune_suite.train.estimators import cv_splitter

    spec = importlib.util.spec_from_file_location("sklearn_gridsearch", REPO / "benchmarks" / "sklearn_gridsearch.py")
    sklearn_gridsearch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sklearn_gridsearch)
    started = time.monotonic()
    cfg = load_config(config_path(args.experiment), json.loads(args.gridsearchcv))
    experiment = load_experiment(cfg.experiment)
    x, y = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(cfg.model))
    _, grids = sklearn_gridsearch.estimator_grid(cfg, experiment)
    folds = cv_splitter(cfg.cv, estimator, y, cfg.tune.split_seed)
    search = GridSearchCV(estimator, grids, cv=folds, scoring=cfg.cv.scoring, n_jobs=1).fit(x, y)
    wall = time.monotonic() - started
    scores = [float(s) for s in search.cv_results_["mean_test_score"]]
    print(json.dumps({"trials": len(scores), "failed": 0, "best": float(search.best_score_), "wall_s": wall,
                      "fit_s": wall, "scores": scores}))  # fmt: skip


def default_space_file(experiment: str) -> Path | None:
    """The space this benchmark discretises for `experiment` when it is not the experiment's own (mnist_cnn: its
    full space is a 1944-config grid at 3 points; this one fixes batch size, dropout and shift: 108)."""
    path = REPO / "benchmarks" / "spaces" / f"{experiment}.json"
    return path if path.exists() else None


def optuna_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def optuna_params(trial, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One config of the discretised space (every parameter a `choice`) from an Optuna trial: a conditional
    parameter is suggested only where its sibling takes one of its `when` values, as TPE sees it in HyperOpt."""
    out: dict[str, dict[str, Any]] = {}
    for section, params in space.items():
        values = out.setdefault(section, {})
        for name, spec in sorted(params.items(), key=lambda kv: bool(kv[1].get("when"))):  # parents first
            when = spec.get("when")
            if when and values.get(next(iter(when))) not in next(iter(when.values())):
                continue
            values[name] = trial.suggest_categorical(f"{section}.{name}", spec["values"])
    return out


@dataclass
class InProcess:
    """An experiment's trials trained in this process on CPU, with no Ray and no MLflow, on the suite's own loop
    (`build_training`, `train_epoch`, `evaluate`), one torch thread each as a 1-CPU trial: what the Optuna and
    `--noise` children share. Trials trained in two threads at once (Optuna's n_jobs=2) share torch's global
    generator, which dropout draws from: a seed then does not reproduce its result exactly."""

    cfg: Any  # ExperimentConfig
    fixed: dict[str, dict[str, Any]]  # the config's own values of every section
    suite: dict[str, Any]  # what the trainable reads besides the sections (seeds, metric, experiment)
    data: Any  # Datasets, loaded once on the fixed split
    seeding: Any  # a lock: build_training seeds torch's global generator, then builds the model
    sign: int  # +1 when the metric is maximised

    @classmethod
    def load(cls, experiment: str, overrides: list[str]) -> InProcess:
        import threading

        import torch

        from raytune_suite.config import load_config
        from raytune_suite.run.tuner import param_space

        cfg = load_config(config_path(experiment), overrides)
        fixed, suite = cfg.fixed_sections(), param_space(cfg)["suite"]
        torch.set_num_threads(1)
        run = cls(cfg, fixed, suite, None, threading.Lock(), 1 if cfg.tune.mode == "max" else -1)
        defaults = run.config()
        run.data = defaults.experiment.load_data(defaults.data, cfg.tune.split_seed)
        return run

    def config(self, sampled: dict[str, dict[str, Any]] | None = None, seed: int | None = None):
        """The trial config of the fixed values with `sampled` over them, torch seeded by `seed` (default tune.seed)."""
        from raytune_suite.train.trainable import Trial as TrialConfig

        sections = {k: {**v, **(sampled or {}).get(k, {})} for k, v in self.fixed.items()}
        return TrialConfig.from_config(
            {**sections, "suite": self.suite if seed is None else {**self.suite, "seed": seed}}
        )

    def train(self, config, report=None, outcome: list | None = None) -> list:
        """Train `config`; `report(value, epoch)` after each epoch may raise to stop it. `outcome` ([epochs trained,
        best value]) is kept up to date, so a stopped trial still tells what it spent."""
        import torch

        from raytune_suite.train.trainable import build_training, one_epoch

        outcome = outcome if outcome is not None else [0, None]
        cpu = torch.device("cpu")
        with self.seeding:
            t = build_training(config, self.data, cpu)
        for epoch in range(1, config.train.epochs + 1):
            metrics = one_epoch(t, epoch)
            value = math.nan if "diverged" in metrics else metrics[self.cfg.tune.metric]
            outcome[0] = epoch
            if math.isfinite(value) and (outcome[1] is None or self.sign * value > self.sign * outcome[1]):
                outcome[1] = value
            if report is not None:
                report(value, epoch)
        return outcome


def optuna_child(args: argparse.Namespace) -> None:
    """`--optuna`: Optuna's TPE + successive halving over the discretised space, on the suite's training loop."""
    import optuna

    run = InProcess.load(args.experiment, json.loads(args.optuna))
    cfg = run.cfg
    space = {s: {n: p.model_dump(exclude_none=True) for n, p in ps.items()} for s, ps in cfg.space.items()}
    started, done = time.monotonic(), []

    def objective(trial) -> float:
        config = run.config(optuna_params(trial, space))

        def report(value: float, epoch: int) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        outcome = [0, None]
        try:
            run.train(config, report, outcome)
            return outcome[1]
        finally:
            done.append((time.time(), *outcome))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if cfg.tune.mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.tune.seed, n_startup_trials=OPTUNA_STARTUP_TRIALS),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    study.optimize(objective, n_trials=cfg.tune.num_samples, n_jobs=2)
    wall = time.monotonic() - started
    values = [b for _, _, b in done if b is not None]
    best = (max(values) if run.sign > 0 else min(values)) if values else None
    failed = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    print(json.dumps({"trials": len(study.trials), "failed": failed, "best": best, "wall_s": wall, "fit_s": wall,
                      "trials_detail": done}))  # fmt: skip


def retrain_child(args: argparse.Namespace) -> None:
    """`--retrain`: the config's own (untuned) values trained `--noise` times, torch seeded 0..N-1, on the same
    split: how much the metric of one config moves with the training seed alone. One after another: dropout draws
    from torch's global generator, which two threads training at once would share, and each seed's result would
    then depend on how they interleaved."""
    run = InProcess.load(args.experiment, json.loads(args.retrain))
    started = time.monotonic()
    outcomes = [run.train(run.config(seed=seed)) for seed in range(args.noise)]
    fixed = run.fixed
    tuned = {s: {n: fixed[s][n] for n in params if fixed[s].get(n) is not None} for s, params in run.cfg.space.items()}
    print(json.dumps({"bests": [best for _, best in outcomes], "epochs": run.cfg.train.epochs, "config": tuned,
                      "wall_s": time.monotonic() - started}))  # fmt: skip


def noise_line(bests: Sequence[float | None], config: dict) -> str:
    """The spread of one config's metric over training seeds: differences between strategies below it are noise."""
    values = [b for b in bests if b is not None]
    if len(values) < 2:
        return ""
    sd = statistics.stdev(values)
    tuned = ", ".join(f"{k}={v}" for section in config.values() for k, v in section.items())
    return (
        f"  retraining noise: one config ({tuned}) over {len(values)} training seeds: "
        f"median {statistics.median(values):.4g} [{min(values):.4g}, {max(values):.4g}], sd {sd:.2g}"
    )


def config_path(experiment: str) -> Path:
    return REPO / "experiments" / f"{experiment}.yaml"


def run_child(flag: str, payload: list[str], args: argparse.Namespace, log: Path) -> dict:
    """This script again with `flag payload`, in a fresh temporary folder (its default SQLite store and
    ray_results) with a short RAY_TMPDIR; returns the child's JSON and the folder."""
    workdir = Path(tempfile.mkdtemp(prefix="rts-eff-"))
    ray_tmp = tempfile.mkdtemp(prefix="rts-", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_TMPDIR": ray_tmp}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default store: ./mlflow.db in the child's folder
    cmd = [sys.executable, __file__, "--experiment", args.experiment, "--num-cpus", str(args.num_cpus),
           "--noise", str(args.noise), flag, json.dumps(payload)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    log.write_text(proc.stdout + proc.stderr)
    subprocess.run(["rm", "-rf", ray_tmp], check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[-2:])[:200]} failed (exit {proc.returncode}), log {log}:\n{proc.stderr[-3000:]}")
    out = json.loads(next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")))
    out["workdir"] = str(workdir)
    return out


# -- the comparison --------------------------------------------------------------------------------------------
@dataclass
class Plan:
    kind: str  # torch or estimator
    metric: str
    mode: str
    strategies: list[str]
    overrides: dict[str, list[str]]  # per strategy, without the seed
    lines: list[str]  # the discretisation, for the output
    grid_trials: int
    num_samples: int
    epochs: int | None
    common: list[str]  # the overrides every strategy shares (split, epochs, the user's --set)


def plan(args: argparse.Namespace) -> Plan:
    from raytune_suite.config import load_config
    from raytune_suite.config.space import grid_size

    cfg = load_config(config_path(args.experiment), args.overrides)
    kind = cfg.kind
    raw_space = {s: {n: p.model_dump(exclude_none=True) for n, p in ps.items()} for s, ps in cfg.space.items()}
    discrete = discretise_space(raw_space, args.points)
    check = load_config(config_path(args.experiment), [*args.overrides, "space=" + json.dumps(discrete)])
    grid_trials = grid_size(check.space, grid=True)
    if grid_trials > args.max_grid:
        sys.exit(f"the discretised grid has {grid_trials} configs (> --max-grid {args.max_grid}); lower --points "
                 "or fix parameters with --set space=...")  # fmt: skip
    budget = cfg.tune.num_samples if cfg.tune.search != "grid" else math.ceil(grid_trials / 2)
    if args.quick:
        budget = max(2, budget // 4)
    num_samples = args.num_samples or budget
    common = [*args.overrides, "tune.split_seed=0"]
    epochs = None
    if kind == "torch":
        epochs = args.epochs or cfg.train.epochs
        if args.quick and not args.epochs:
            asha = cfg.tune.asha
            epochs = min(epochs, max(asha.grace_period, int(asha.grace_period * asha.reduction_factor)))
        common.append(f"train.epochs={epochs}")
        strategies = [*STRATEGIES, OPTUNA]
        if not optuna_installed():
            print(f"  {OPTUNA}: skipped, optuna is not installed (pip install -e '.[bench]')", flush=True)
            strategies.remove(OPTUNA)
    else:
        strategies = list(ESTIMATOR_STRATEGIES)
    if args.strategies:  # the grid stays first: the others' trial-epochs are a share of its
        unknown = set(args.strategies) - set(strategies)
        if unknown:
            sys.exit(f"--strategies: {sorted(unknown)} not among {strategies} for {args.experiment}")
        strategies = [s for s in strategies if s in args.strategies]
    discrete_set = "space=" + json.dumps(discrete)
    overrides = {}
    for name in strategies:
        if name == GRIDSEARCHCV:  # the grid's configs, as estimator parameters (sklearn_gridsearch.estimator_grid)
            overrides[name] = [*common, discrete_set]
            continue
        if name == OPTUNA:
            overrides[name] = [*common, discrete_set, f"tune.num_samples={num_samples}"]
            continue
        search, scheduler = STRATEGIES[name]
        space = discrete_set if (search == "grid" or args.space == "discrete" or kind == "estimator") else None
        samples = 1 if search == "grid" else num_samples
        overrides[name] = [*common, *([space] if space else []), f"tune.search={search}",
                           f"tune.scheduler={scheduler}", f"tune.num_samples={samples}"]  # fmt: skip
    return Plan(kind, cfg.tune.metric, cfg.tune.mode, strategies, overrides,
                describe_discretisation(raw_space, args.points), grid_trials, num_samples, epochs, common)  # fmt: skip


def gridsearchcv_trials(scores: list[float], wall: float) -> list[Trial]:
    """GridSearchCV fits its candidates in order (n_jobs=1): one cross-validation each, ends spread evenly."""
    return [Trial(end=wall * (i + 1) / len(scores), epochs=1, best=s) for i, s in enumerate(scores)]


def measured_rows(out: Path, experiment: str, points: int, epochs: int | None, num_samples: int) -> list[dict]:
    """The rows (curves included) an earlier run of the same experiment, points, epochs and budget left in `out`'s
    CSVs: what `--resume` does not run again."""
    results, curves = out / "results.csv", out / "curves.csv"
    if not results.exists() or not curves.exists():
        return []
    with curves.open(newline="") as handle:
        points_of: dict[tuple[str, int], list[tuple[int, float | None]]] = {}
        for r in csv.DictReader(handle):
            y = float(r["best_so_far"]) if r["best_so_far"] else None
            points_of.setdefault((r["strategy"], int(r["seed"])), []).append((int(r["trial_epochs"]), y))
    rows = []
    with results.open(newline="") as handle:
        for r in csv.DictReader(handle):
            if (r["experiment"], r["points"], r["epochs"]) != (experiment, str(points), str(epochs or "")):
                continue
            if r["num_samples"] not in ("1", "", str(num_samples)):  # the grid's is 1, GridSearchCV's empty
                continue
            key = (r["strategy"], int(r["seed"]))
            rows.append({"strategy": key[0], "seed": key[1], "trials": int(r["trials"]), "failed": int(r["failed"]),
                         "best": float(r["best"]) if r["best"] else None, "trial_epochs": int(r["trial_epochs"]),
                         "wall_s": float(r["wall_s"]), "fit_s": float(r["fit_s"]),
                         "curve": points_of.get(key, [])})  # fmt: skip
    return rows


def run_all(args: argparse.Namespace, p: Plan, out: Path, done: list[dict]) -> list[dict]:
    """Every strategy and seed of the plan; a (strategy, seed) in `done` (from --resume) is kept, not run."""
    rows = []
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name in p.strategies:
        for seed in range(args.grid_seeds if name == "grid+fifo" and args.grid_seeds else args.seeds):
            earlier = [r for r in done if (r["strategy"], r["seed"]) == (name, seed)]
            if earlier:
                rows.append(earlier[0])
                print(f"  {name} seed {seed}: best {earlier[0]['best']}, from the earlier run in {out}", flush=True)
                continue
            overrides = [*p.overrides[name], f"tune.seed={seed}"]
            log = logs / f"{name}-seed{seed}.log"
            if name == GRIDSEARCHCV:
                res = run_child("--gridsearchcv", overrides, args, log)
                trials = gridsearchcv_trials(res["scores"], res["wall_s"])
            elif name == OPTUNA:
                res = run_child("--optuna", overrides, args, log)
                trials = [Trial(*t) for t in res["trials_detail"]]
            else:
                res = run_child("--child", overrides, args, log)
                trials = read_trials(res["sweep_dir"], p.metric, p.mode)
            row = {"strategy": name, "seed": seed, "trials": res["trials"], "failed": res["failed"],
                   "best": res["best"], "trial_epochs": trial_epochs(trials), "wall_s": res["wall_s"],
                   "fit_s": res["fit_s"], "curve": best_so_far(trials, p.mode)}  # fmt: skip
            if args.keep:
                row["workdir"] = res["workdir"]
            else:
                subprocess.run(["rm", "-rf", res["workdir"]], check=False)
            rows.append(row)
            print(f"  {name} seed {seed}: best {row['best']}, {row['trials']} trials, {row['trial_epochs']} "
                  f"trial-epochs, {row['wall_s']:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    return rows


def shown_strategies(planned: list[str], rows: list[dict]) -> list[str]:
    """The planned strategies and any other that `rows` hold, in the canonical order (the grid first)."""
    present = set(planned) | {r["strategy"] for r in rows}
    return [name for name in [*STRATEGIES, OPTUNA, GRIDSEARCHCV] if name in present]


def summary(rows: list[dict], strategies: list[str]) -> list[dict]:
    by = {name: [r for r in rows if r["strategy"] == name] for name in strategies}
    grid = spread(r["trial_epochs"] for r in by.get("grid+fifo", []))
    out = []
    for name, runs in by.items():
        best = spread(r["best"] for r in runs)
        epochs = spread(r["trial_epochs"] for r in runs)
        out.append({"strategy": name, "best": best, "epochs": epochs[0],
                    "share": 100 * epochs[0] / grid[0] if grid and grid[0] else None,
                    "wall": spread(r["wall_s"] for r in runs)[0],
                    "trials": spread(r["trials"] for r in runs)[0], "seeds": len(runs)})  # fmt: skip
    return out


def table(stats: list[dict], metric: str, mode: str) -> str:
    """strategy, seeds, trials, best median [min, max], trial-epochs median, its % of the grid's, wall s median."""
    best_head = f"best {metric} ({mode}) median [min, max]"
    lines = [
        f"  {'strategy':15s} {'seeds':>5s} {'trials':>6s}  {best_head:38s} {'trial-epochs':>12s} {'% of grid':>9s} "
        f"{'wall s':>7s}"
    ]
    for s in stats:
        best = f"{s['best'][0]:.4g} [{s['best'][1]:.4g}, {s['best'][2]:.4g}]" if s["best"] else "none"
        share = f"{s['share']:.0f}%" if s["share"] is not None else "-"
        lines.append(
            f"  {s['strategy']:15s} {s['seeds']:>5} {s['trials']:>6g}  {best:38s} {s['epochs']:>12g} "
            f"{share:>9s} {s['wall']:>7.1f}"
        )
    return "\n".join(lines)


EQUAL_COMPUTE_SHARES = (0.05, 0.10, 0.20)  # of the grid's trial-epochs


def equal_compute_table(rows: list[dict], strategies: list[str], shares: Sequence[float] = EQUAL_COMPUTE_SHARES) -> str:
    """Each strategy's best-so-far (median [min, max] over seeds) once it had spent each share of the grid's
    trial-epochs: the strategies compared at equal compute, not at equal trials. Empty without a grid."""
    grid = spread(r["trial_epochs"] for r in rows if r["strategy"] == "grid+fifo")
    if not grid:
        return ""
    budgets = [share * grid[0] for share in shares]
    head = "".join(f"{f'at {share:.0%} ({b:.0f})':>28s}" for share, b in zip(shares, budgets, strict=True))
    lines = [f"  best so far at equal compute (share of the grid's trial-epochs):\n  {'strategy':15s}{head}"]
    for name in strategies:
        runs = [r for r in rows if r["strategy"] == name]
        cells = []
        for b in budgets:
            s = spread(curve_at(r["curve"], [b])[0] for r in runs)
            cells.append(f"{s[0]:.4g} [{s[1]:.4g}, {s[2]:.4g}]" if s else "none")
        lines.append(f"  {name:15s}" + "".join(f"{c:>28s}" for c in cells))
    return "\n".join(lines)


PAIRS = (("hyperopt+asha", "random+asha"), ("hyperopt+fifo", "random+fifo"), ("hyperopt+asha", OPTUNA))


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped): the chance of a split at least this uneven if neither is better."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_table(rows: list[dict], mode: str, pairs: Sequence[tuple[str, str]] = PAIRS) -> str:
    """Strategy A against B seed by seed (the same tune.seed and split): wins, ties and losses on the best value,
    the median difference and the sign test's p; and A's trial-epochs as a share of B's."""
    sign = 1 if mode == "max" else -1
    lines = []
    for a, b in pairs:
        by_a = {r["seed"]: r for r in rows if r["strategy"] == a and r["best"] is not None}
        by_b = {r["seed"]: r for r in rows if r["strategy"] == b and r["best"] is not None}
        seeds = sorted(by_a.keys() & by_b.keys())
        if len(seeds) < 2:
            continue
        diffs = [sign * (by_a[s]["best"] - by_b[s]["best"]) + 0.0 for s in seeds]  # + 0.0: no "-0" printed
        wins, losses = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
        spent = statistics.median(by_a[s]["trial_epochs"] / by_b[s]["trial_epochs"] for s in seeds)
        lines.append(
            f"  {a} vs {b}, {len(seeds)} paired seeds: better in {wins}, tied in {len(seeds) - wins - losses}, "
            f"worse in {losses}; median difference {statistics.median(diffs):+.4g} (sign test p = "
            f"{sign_test_p(wins, losses):.2f}); trial-epochs {spent:.0%} of {b}'s (median ratio)"
        )
    return "\n".join(["  paired by seed:", *lines]) if lines else ""


def write_csvs(rows: list[dict], out: Path, experiment: str, p: Plan, args: argparse.Namespace) -> list[Path]:
    results, curves = out / "results.csv", out / "curves.csv"
    fields = ["experiment", "strategy", "seed", "space", "points", "num_samples", "epochs", "trials", "failed",
              "best", "trial_epochs", "wall_s", "fit_s"]  # fmt: skip
    with results.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            own_space = r["strategy"] in ("grid+fifo", GRIDSEARCHCV, OPTUNA) or p.kind == "estimator"
            space = "discrete" if own_space else args.space
            writer.writerow({**r, "experiment": experiment, "space": space, "points": args.points,
                             "num_samples": {"grid+fifo": 1, GRIDSEARCHCV: ""}.get(r["strategy"], p.num_samples),
                             "epochs": p.epochs or ""})  # fmt: skip
    with curves.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["strategy", "seed", "trial_epochs", "best_so_far"])
        for r in rows:
            writer.writerows([r["strategy"], r["seed"], x, "" if y is None else y] for x, y in r["curve"])
    return [results, curves]


def zoom_limits(finals: Sequence[float], mode: str) -> tuple[float, float]:
    """y-limits around every run's final best value, with room on the worse side to see the curves arrive."""
    lo, hi = min(finals), max(finals)
    span = (hi - lo) or abs(lo) * 0.01 or 1.0
    return (lo - 0.5 * span, hi + 1.5 * span) if mode == "min" else (lo - 1.5 * span, hi + 0.5 * span)


def plot(rows: list[dict], strategies: list[str], p: Plan, out: Path, title: str, noise: Sequence = ()) -> Path:
    """Two panels of the same curves: the whole range, and zoomed on where the runs ended, with the spread of one
    config retrained over `noise`'s training seeds as a grey band (--noise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for name in strategies:
        curves = [r["curve"] for r in rows if r["strategy"] == name]
        xs = sorted({x for curve in curves for x, _ in curve})
        at = [curve_at(curve, xs) for curve in curves]
        # from where every seed has a value: a median of some seeds only would jump back up as the rest arrive
        band = [spread(col) if None not in col else None for col in zip(*at, strict=True)]
        keep = [(x, b) for x, b in zip(xs, band, strict=True) if b is not None]
        if not keep:
            continue
        x = [k[0] for k in keep]
        for ax in axes:
            (line,) = ax.step(x, [k[1][0] for k in keep], where="post", label=f"{name} (median of {len(curves)})")
            ax.fill_between(x, [k[1][1] for k in keep], [k[1][2] for k in keep], step="post", alpha=0.2,
                            color=line.get_color())  # fmt: skip
    finals = [r["curve"][-1][1] for r in rows if r["curve"] and r["curve"][-1][1] is not None]
    retrained = [v for v in noise if v is not None]
    if len(retrained) > 1:
        band = axes[1].axhspan(
            min(retrained),
            max(retrained),
            color="grey",
            alpha=0.15,
            zorder=0,
            label=f"one config retrained over {len(retrained)} training seeds: min-max, median",
        )
        axes[1].axhline(statistics.median(retrained), color="grey", linestyle="--", linewidth=1)
        axes[1].legend(handles=[band], loc="upper left", fontsize="small")  # the strategies: the left panel's
        finals += retrained
    if finals:
        axes[1].set_ylim(*zoom_limits(finals, p.mode))
    for ax, label in zip(axes, ("", " (zoomed)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("cumulative trial-epochs" if p.kind == "torch" else "cumulative cross-validations")
        ax.set_ylabel(f"best {p.metric} so far ({p.mode}){label}")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    path = out / "anytime.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def metric_name(strategy: str) -> str:
    """MLflow refuses "+" in metric names: grid+fifo -> grid_fifo."""
    return strategy.replace("+", "_")


def log_to_mlflow(uri: str, rows: list[dict], stats: list[dict], artifacts: list[Path], params: dict) -> str:
    """A parent run in experiment "tuning_efficiency" with the CSVs and the plot; a child per strategy and seed."""
    import mlflow
    from mlflow.entities import Metric

    from raytune_suite.track.store import experiment_id_for

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    # a new SQLite store would keep artifacts in ./mlruns under the working directory, not beside the store
    mlflow.set_experiment(experiment_id=experiment_id_for(client, "tuning_efficiency", uri))
    with mlflow.start_run(run_name=f"{params['experiment']}-tuning-efficiency") as parent:
        mlflow.log_params(params)
        for s in stats:
            if s["best"]:
                mlflow.log_metric(f"{metric_name(s['strategy'])}.best_median", s["best"][0])
            mlflow.log_metric(f"{metric_name(s['strategy'])}.trial_epochs_median", s["epochs"])
        for path in artifacts:
            mlflow.log_artifact(str(path))
        for r in rows:
            with mlflow.start_run(run_name=f"{r['strategy']}-seed{r['seed']}", nested=True) as run:
                mlflow.log_params({"strategy": r["strategy"], "seed": r["seed"]})
                mlflow.log_metrics({k: r[k] for k in ("trial_epochs", "wall_s", "trials") if r[k] is not None})
                if r["best"] is not None:
                    mlflow.log_metric("best", r["best"])
                now = int(time.time() * 1000)
                points = [Metric("best_so_far", y, now, x) for x, y in r["curve"] if y is not None]
                for i in range(0, len(points), 1000):
                    client.log_batch(run.info.run_id, metrics=points[i : i + 1000])
        return parent.info.run_id


def retraining_noise(args: argparse.Namespace, p: Plan, out: Path) -> dict:
    """`--noise N`: the experiment's own config trained N times (kept in noise.json, reused by --resume): its
    best values (`bests`) and the config (`config`)."""
    saved = out / "noise.json"
    key = {"experiment": args.experiment, "noise": args.noise, "overrides": p.common}
    res = json.loads(saved.read_text()) if args.resume and saved.exists() else {}
    if res.get("key") != key:
        res = run_child("--retrain", p.common, args, out / "logs" / "retrain.log")
        subprocess.run(["rm", "-rf", res.pop("workdir")], check=False)
        saved.write_text(json.dumps({**res, "key": key}))
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="diabetes_linear")
    parser.add_argument("--seeds", type=int, default=3, help="tune.seed 0..N-1 per strategy (default 3)")
    parser.add_argument("--grid-seeds", type=int, help="seeds of the grid (default --seeds): it is the costliest")
    parser.add_argument("--points", type=int, default=3, help="values per continuous parameter (default 3)")
    parser.add_argument("--space", choices=["discrete", "original"], default="discrete",
                        help="what the non-grid strategies search (default: the grid's discretised space)")  # fmt: skip
    parser.add_argument("--num-samples", type=int, help="trials per non-grid sweep (default: the experiment's)")
    parser.add_argument("--epochs", type=int, help="train.epochs (default: the experiment's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--space-file",
        type=Path,
        help="the space to discretise, JSON (default: "
        "benchmarks/spaces/<experiment>.json where there is one, else the experiment's own space)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 points, a quarter of the trials, epochs up to ASHA's second rung"
    )
    parser.add_argument("--strategies", nargs="+", help=f"a subset of {[*STRATEGIES, OPTUNA, GRIDSEARCHCV]}")
    parser.add_argument("--max-grid", type=int, default=400, help="refuse a discretised grid larger than this")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, help="default ./tuning_efficiency/<experiment>")
    parser.add_argument("--mlflow-uri", help="store of the summary run (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///<out>/mlflow.db)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="keep the strategies and seeds that --out's CSVs "
                        "already hold for the same experiment, points and epochs; run the rest")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep each sweep's temporary folder")
    parser.add_argument("--noise", type=int, default=0, metavar="N", help="also train the experiment's own config "
                        "N times (torch seeds 0..N-1): the metric's spread from the training seed alone")  # fmt: skip
    parser.add_argument("--retrain", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--gridsearchcv", help=argparse.SUPPRESS)
    parser.add_argument("--optuna", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.optuna:
        optuna_child(args)
        return
    if args.child:
        child(args)
        return
    if args.gridsearchcv:
        gridsearchcv_child(args)
        return
    if args.retrain:
        retrain_child(args)
        return
    if args.quick and args.points == 3:
        args.points = 2
    args.space_file = args.space_file or default_space_file(args.experiment)
    if args.space_file:  # before the user's --set, which may still change it
        args.overrides = ["space=" + args.space_file.read_text().strip(), *args.overrides]
    out = (args.out or Path("tuning_efficiency") / args.experiment).resolve()
    out.mkdir(parents=True, exist_ok=True)
    p = plan(args)
    space_note = "the discretised space" if args.space == "discrete" or p.kind == "estimator" else "the original space"
    print(f"{args.experiment}: {', '.join(p.strategies)}; {args.seeds} seed(s) (tune.seed 0..{args.seeds - 1}, "
          f"tune.split_seed 0); {args.num_cpus} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    print(f"  budget: grid {p.grid_trials} configs; others {p.num_samples} trials each on {space_note}"
          + (f"; train.epochs {p.epochs}" if p.epochs else "; one cross-validation per trial"), flush=True)  # fmt: skip
    if args.space_file:
        print(f"  space: {args.space_file} (not the experiment's own)", flush=True)
    print(f"  discretisation ({args.points} points per continuous parameter):")
    for line in p.lines:
        print(f"    {line}", flush=True)
    from load_sampler import sampled_load  # beside this script

    with sampled_load() as loads:
        done = measured_rows(out, args.experiment, args.points, p.epochs, p.num_samples) if args.resume else []
        rows = run_all(args, p, out, done)
    # Strategies measured earlier but not asked for this time stay in the CSVs and tables (--resume rewrites them).
    rows += [r for r in done if r["strategy"] not in p.strategies]
    shown = shown_strategies(p.strategies, rows)
    stats = summary(rows, shown)
    load = f"load average (1 min) mean {statistics.mean(loads):.2f}, max {max(loads):.2f} on {os.cpu_count()} CPUs"
    text = table(stats, p.metric, p.mode)
    print(f"{args.experiment}, {load}:\n{text}")
    equal = equal_compute_table(rows, shown)
    paired = paired_table(rows, p.mode)
    retrained = retraining_noise(args, p, out) if args.noise > 1 and p.kind == "torch" else {"bests": []}
    noise = noise_line(retrained["bests"], retrained.get("config", {}))
    extra = "\n".join(part for part in (equal, paired, noise) if part)
    print(extra)
    (out / "summary.txt").write_text(f"{text}\n{extra}\n")
    (out / "discretisation.txt").write_text("\n".join(p.lines) + "\n")
    title = f"{args.experiment}: best-so-far, median and min-max over seeds"
    artifacts = [*write_csvs(rows, out, args.experiment, p, args), plot(rows, shown, p, out, title, retrained["bests"]),
                 out / "discretisation.txt", out / "summary.txt"]  # fmt: skip
    artifacts += [out / "noise.json"] if noise else []
    uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{out / 'mlflow.db'}"
    params = {"experiment": args.experiment, "space_file": str(args.space_file or ""), "seeds": args.seeds,
              "grid_seeds": args.grid_seeds or args.seeds,
              "points": args.points, "space": args.space,
              "num_samples": p.num_samples, "epochs": p.epochs, "grid_configs": p.grid_trials,
              "num_cpus": args.num_cpus, "quick": args.quick}  # fmt: skip
    run_id = log_to_mlflow(uri, rows, stats, artifacts, params)
    print(f"wrote {', '.join(str(a) for a in artifacts)}; MLflow run {run_id} in {uri} (experiment tuning_efficiency)")


if __name__ == "__main__":
    main()
