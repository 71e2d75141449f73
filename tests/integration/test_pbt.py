"""PBT changes trials' configs mid-run; MLflow must record each generation without rewriting a param (ray#20473)."""

import pytest

from raytune_suite.config import load_config
from raytune_suite.sweep import run_sweep
from tests.integration.test_sweep import runs_of

pytestmark = pytest.mark.integration

PBT = [
    "data.dataset=digits", "data.subset=600", "train.epochs=4", "train.schedule=constant",
    "tune.search=random", "tune.scheduler=pbt", "tune.num_samples=4", "tune.resources.cpu=0.5", "tune.seed=1",
    "space={train: {lr: {type: loguniform, low: 1.0e-4, high: 3.0e-2}}}",
]  # fmt: skip


def test_pbt_sweep_finishes_and_records_each_generation_as_new_params_and_config_metrics(ray_local, store, mnist_yaml):
    uri, client, storage = store
    result = run_sweep(load_config(mnist_yaml, PBT), tracking_uri=uri, storage=storage)

    parents, children = runs_of(client, result.experiment_id)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    mutated = [c for c in children if int(c.data.tags.get("generation", 0)) >= 1]
    assert mutated, "PBT changed no trial's config in 4 epochs"
    changed_mid_run = 0
    for child in mutated:
        original = float(child.data.params["train.lr"])  # the first generation's param, never rewritten
        generations = int(child.data.tags["generation"])
        assert {f"gen{g}.train.lr" for g in range(1, generations + 1)} <= set(child.data.params)
        logged = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "config/train.lr")}
        trained = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "lr")}
        # Synchronous PBT: a donor's checkpoint is at the same epoch, so each run's steps stay 1..4.
        assert sorted(logged) == [1, 2, 3, 4] and logged[1] == pytest.approx(original)
        # Each epoch's recorded config is the lr the trainable really used (the schedule is constant).
        assert logged == pytest.approx(trained)
        changed_mid_run += len({round(v, 12) for v in logged.values()}) > 1
    assert changed_mid_run, "no trial trained with a mutated lr"
