"""Growing a finished sweep (`--resume DIR --num-samples N`) on a real local Ray, checked in the MLflow store."""

import json
from pathlib import Path

import pytest
from ray.tune.search.hyperopt import HyperOptSearch

from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from raytune_suite.run.sweep import run_sweep
from raytune_suite.run.tuner import param_space
from raytune_suite.search.hyperopt_record import hyperopt_vals
from raytune_suite.track.runmap import RunMap

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST, GROWN = 6, 12
SWEEP = ["data.dataset=digits", "data.subset=600", "train.epochs=2", f"tune.num_samples={FIRST}",
         "tune.max_concurrent=2", "tune.n_initial_points=3", "tune.seed=3", "run.name=grown"]  # fmt: skip


def children_of(client, experiment_id, parent_id, metric):
    """run id -> (trial id, status, the metric's history as (step, value) pairs)."""
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000)
    return {
        r.info.run_id: (
            r.data.tags["trial_id"],
            r.info.status,
            [(m.step, m.value) for m in sorted(client.get_metric_history(r.info.run_id, metric), key=lambda m: m.step)],
        )
        for r in runs
    }


def test_a_six_trial_sweep_grows_to_twelve_under_the_same_parent(ray_local, store, mnist_yaml, capsys):
    uri, client, storage = store
    cfg = load_config(mnist_yaml, SWEEP)
    metric = cfg.tune.metric
    first = run_sweep(cfg, tracking_uri=uri, storage=storage)
    assert first.trials == FIRST and first.failed == 0
    before = children_of(client, first.experiment_id, first.parent_run_id, metric)
    assert len(before) == FIRST

    grown = run_sweep(cfg, tracking_uri=uri, storage=storage, resume=first.storage_path, grow_to=GROWN)

    assert "growing the sweep: it has 6 trials (tune.num_samples 6), adding 6" in capsys.readouterr().out
    assert grown.parent_run_id == first.parent_run_id and grown.trials == GROWN and grown.failed == 0
    after = children_of(client, first.experiment_id, first.parent_run_id, metric)
    assert len(after) == GROWN
    # The earlier children are the same runs, with the same metrics; six new ones joined them.
    assert {run_id: after[run_id] for run_id in before} == before
    new = {run_id: child for run_id, child in after.items() if run_id not in before}
    assert len(new) == GROWN - FIRST and {status for _, status, _ in new.values()} == {"FINISHED"}
    assert {trial for trial, _, _ in new.values()}.isdisjoint(trial for trial, _, _ in before.values())

    run_map = RunMap.load(first.storage_path)
    assert run_map.parent_run_id == first.parent_run_id
    assert set(run_map.trials) == {trial for trial, _, _ in after.values()} and len(run_map.trials) == GROWN
    assert all(Path(first.storage_path, f"trial_{trial}", "params.json").is_file() for trial in run_map.trials)
    stages = json.loads(Path(first.storage_path, "sweep_stages.json").read_text())["stages"]
    assert [(s["num_samples"], len(s["earlier"]), s["complete"]) for s in stages] == [(6, 0, True), (12, 6, True)]
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["grown_to_num_samples"] == str(GROWN)
    best = client.get_run(parent.data.tags["best_run_id"])
    # MLflow never lets a param change: the first completion's best.* stay, the growth logs its own best_of_12.*.
    assert parent.data.params["best_of_12.train.lr"] == best.data.params["train.lr"]
    assert "best.train.lr" in parent.data.params

    # The growth's HyperOpt, as Tune saved it, learned from the earlier trials' configs as they ran, then the new ones.
    searcher = HyperOptSearch()
    searcher.restore_from_dir(first.storage_path)
    docs = searcher.get_state()["hyperopt_trials"].trials
    assert len(docs) == GROWN and {d["result"]["status"] for d in docs} == {"ok"}
    space = param_space(cfg)
    for doc, trial in zip(docs[:FIRST], list(run_map.trials)[:FIRST], strict=True):
        config = json.loads(Path(first.storage_path, f"trial_{trial}", "params.json").read_text())
        assert {k: v for k, v in doc["misc"]["vals"].items() if v} == hyperopt_vals(space, config)

    # Asking again for 12 (or fewer) adds nothing: refused before Ray or MLflow are touched.
    with pytest.raises(ConfigError, match=r"--num-samples 12: the sweep already has 12 trials"):
        run_sweep(cfg, tracking_uri=uri, storage=storage, resume=first.storage_path, grow_to=GROWN)
