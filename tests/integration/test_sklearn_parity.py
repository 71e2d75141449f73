"""The rt_logreg grid through `raytune-suite run` (a real process: its own Ray on 2 CPUs, its own MLflow store) and
through GridSearchCV itself, on the same folds: the same best_params_, the same mean CV scores (to 1e-9), and in
MLflow 8 child runs with each fold's score and the refit best estimator as a sklearn model.

The shipped YAML's full 3,892-review run takes 80-110 s here, mostly Ray and MLflow start-up; the test runs the same
grid on the first 1,500 reviews (1,200 after the held-out split), which exercises the same path.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from mlflow import MlflowClient

from experiments.rt_logreg import penalty
from raytune_suite.config import load_config
from raytune_suite.experiments import load_experiment
from tests.conftest import EXPERIMENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RT_LOGREG = EXPERIMENTS / "rt_logreg.yaml"
SUBSET = ["data.subset=1500"]
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """`raytune-suite run` of the grid in its own working directory and Ray temp folder; its MLflow client."""
    cwd = tmp_path_factory.mktemp("sklearn-parity")
    ray_tmp = tempfile.mkdtemp(prefix="rts-", dir="/tmp")  # Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "raytune_suite.cli", "run", str(RT_LOGREG), "--num-cpus", "2",
         *(arg for o in SUBSET for arg in ("--set", o))],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
    )  # fmt: skip
    wall_s = time.perf_counter() - started
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "rt_logreg"]
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return {"proc": proc, "client": client, "parent": parent, "children": children, "wall_s": wall_s}


@pytest.fixture(scope="module")
def grid_search():
    """GridSearchCV itself over the same estimator, data and grid, on explicitly built folds (not the suite's)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    cfg = load_config(RT_LOGREG, SUBSET)
    experiment = load_experiment(cfg.experiment)
    x, y = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(cfg.model))
    (key,) = penalty("l1")  # `l1_ratio` on scikit-learn >= 1.8, `penalty` before
    names = {penalty(name)[key]: name for name in cfg.space["model"]["penalty"].values}
    param_grid = {"logisticregression__C": cfg.space["model"]["C"].values, f"logisticregression__{key}": list(names)}
    folds = StratifiedKFold(n_splits=cfg.cv.folds, shuffle=True, random_state=cfg.tune.split_seed)
    started = time.perf_counter()
    search = GridSearchCV(estimator, param_grid, cv=folds, scoring=cfg.cv.scoring).fit(x, y)
    wall_s = time.perf_counter() - started

    def config_of(params: dict) -> tuple[float, str]:
        return float(params["logisticregression__C"]), names[params[f"logisticregression__{key}"]]

    scores = {config_of(p): i for i, p in enumerate(search.cv_results_["params"])}
    return {"search": search, "index": scores, "best": config_of(search.best_params_), "x": x, "wall_s": wall_s}


def config_of_run(run) -> tuple[float, str]:
    return float(run.data.params["model.C"]), run.data.params["model.penalty"]


def test_the_cli_runs_the_eight_point_grid_once_each_and_finishes(sweep, grid_search, capsys):
    children = sweep["children"]
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in children)
    assert sorted(config_of_run(r) for r in children) == sorted(grid_search["index"])
    assert sweep["parent"].data.tags["scheduler"] == "fifo" and sweep["parent"].data.params["cv.folds"] == "5"
    with capsys.disabled():
        print(f"\nrt_logreg grid (subset): raytune-suite run {sweep['wall_s']:.1f}s, "
              f"GridSearchCV {grid_search['wall_s']:.1f}s, load average {os.getloadavg()[0]:.2f}")  # fmt: skip


def test_same_mean_cv_scores_and_folds_as_gridsearchcv(sweep, grid_search):
    results = grid_search["search"].cv_results_
    for run in sweep["children"]:
        i = grid_search["index"][config_of_run(run)]
        for key in ("mean_test_score", "std_test_score", *(f"split{k}_test_score" for k in range(5))):
            assert abs(run.data.metrics[key] - results[key][i]) <= TOLERANCE, (config_of_run(run), key)


def test_same_best_params_and_best_score_as_gridsearchcv(sweep, grid_search):
    (best,) = [r for r in sweep["children"] if r.data.tags.get("best_trial") == "true"]
    assert config_of_run(best) == grid_search["best"]
    parent = sweep["parent"]
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert abs(parent.data.metrics["best_mean_test_score"] - grid_search["search"].best_score_) <= TOLERANCE
    assert (float(parent.data.params["best.model.C"]), parent.data.params["best.model.penalty"]) == grid_search["best"]


def test_each_run_holds_its_fold_scores_one_step_per_fold(sweep):
    client = sweep["client"]
    for run in sweep["children"]:
        history = client.get_metric_history(run.info.run_id, "cv_accuracy_fold")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2, 3, 4]
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == [
            run.data.metrics[f"split{k}_test_score"] for k in range(5)
        ]


def test_the_best_run_holds_the_refit_estimator_as_gridsearchcv_leaves_it(sweep, grid_search):
    import mlflow.sklearn
    import numpy as np

    (best,) = [r for r in sweep["children"] if r.data.tags.get("best_trial") == "true"]
    assert best.data.tags["model_refit_examples"] == str(len(grid_search["x"]))
    mlflow.set_tracking_uri(sweep["client"].tracking_uri)
    model = mlflow.sklearn.load_model(f"runs:/{best.info.run_id}/model")
    theirs = grid_search["search"].best_estimator_
    x = grid_search["x"]
    assert (model.predict(x) == theirs.predict(x)).all()
    np.testing.assert_allclose(model[-1].coef_, theirs[-1].coef_, atol=1e-9)
    assert all(r.data.tags.get("model_refit_examples") is None for r in sweep["children"] if r is not best)
