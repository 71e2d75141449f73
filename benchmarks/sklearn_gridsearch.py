"""Time an estimator experiment's grid through `raytune-suite run` and through scikit-learn's GridSearchCV itself.

Same data, estimator, folds (the suite's `cv` section: stratified for a classifier, shuffled with the seed) and
scoring; the grid's configs become estimator parameters by comparing each config's `get_params()` with the
defaults'. Prints each side's best config, best mean CV score and wall time (the suite's includes starting Ray and
MLflow, the smoke check and logging the refit model), and the machine's load average.

    python benchmarks/sklearn_gridsearch.py [experiments/rt_logreg.yaml] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from raytune_suite.config import load_config
from raytune_suite.experiments import load_experiment
from raytune_suite.train.estimators import cv_splitter

DEFAULT = Path(__file__).resolve().parents[1] / "experiments" / "rt_logreg.yaml"
SCALARS = (int, float, str, bool, type(None))


def estimator_grid(cfg, experiment) -> tuple[list[dict], list[dict]]:
    """(the configs of the grid, GridSearchCV's param_grid: one single-point grid per config, in the same order)."""
    base = experiment.build_estimator(experiment.ModelConfig.model_validate(cfg.model)).get_params()
    names = list(cfg.space.get("model", {}))
    configs, grids = [], []
    for values in itertools.product(*(cfg.space["model"][n].values for n in names)):
        model = {**cfg.model, **dict(zip(names, values, strict=True))}
        params = experiment.build_estimator(experiment.ModelConfig.model_validate(model)).get_params()
        changed = {k: [v] for k, v in params.items() if isinstance(v, SCALARS) and v != base.get(k)}
        configs.append(dict(zip(names, values, strict=True)))
        grids.append(changed or {k: [v] for k, v in params.items() if isinstance(v, SCALARS)})
    return configs, grids


def main() -> None:
    from sklearn.model_selection import GridSearchCV

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    experiment = load_experiment(cfg.experiment)
    print(f"{cfg.name}: {cfg.cv.folds}-fold cross-validation, scoring {cfg.cv.scoring}, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

    started = time.perf_counter()
    x, y = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.seed)
    print(f"  load_data: {len(y)} examples, {time.perf_counter() - started:.1f}s")
    estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(cfg.model))
    configs, grids = estimator_grid(cfg, experiment)
    folds = cv_splitter(cfg.cv, estimator, y, cfg.tune.seed)
    for n_jobs in (1, 2):
        started = time.perf_counter()
        search = GridSearchCV(estimator, grids, cv=folds, scoring=cfg.cv.scoring, n_jobs=n_jobs).fit(x, y)
        print(f"  GridSearchCV n_jobs={n_jobs}: best {configs[search.best_index_]} mean_test_score="
              f"{search.best_score_:.4f}, {time.perf_counter() - started:.1f}s (refit included)")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="rts-bench-") as cwd, tempfile.TemporaryDirectory(dir="/tmp") as ray_tmp:
        env = {**os.environ, "RAY_TMPDIR": ray_tmp}
        command = [sys.executable, "-m", "raytune_suite.cli", "run", str(Path(args.config).resolve()), "--num-cpus",
                   str(os.cpu_count()), *(a for o in args.overrides for a in ("--set", o))]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=True)
        wall = time.perf_counter() - started
    lines = proc.stdout.splitlines()
    best = [line.strip() for line in lines if line.startswith(("best trial", "  model:", "sweep "))]
    print(f"  raytune-suite run: {wall:.1f}s in all; " + "; ".join(best[-3:]))


if __name__ == "__main__":
    main()
