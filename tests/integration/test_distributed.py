"""`tune.workers_per_trial: 2`: each trial trains with DDP over two Ray Train workers (gloo on CPU).

Two trials of two 1-CPU workers on a 3-CPU Ray (logical CPUs: a trial is 2 workers + 0.01 for the trial itself) run
one after the other: the second only starts if the first one's worker placement group was released, which on Ray
2.60 needs the dashboard (run_sweep starts it for these sweeps).
"""

import shutil
import tempfile

import pytest

from raytune_suite.config import load_config
from raytune_suite.sweep import run_sweep
from tests.integration.test_sweep import runs_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_ddp_trials_of_two_cpu_workers_run_in_sequence_and_report_every_epoch(
    store, mnist_yaml, tmp_path, monkeypatch
):
    import ray

    uri, client, storage = store
    ray_tmp = tempfile.mkdtemp(prefix="rts-ray-ddp-")  # short: Ray's socket paths must fit in 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    cfg = load_config(
        mnist_yaml,
        ["data.dataset=digits", "data.subset=600", "train.epochs=2", "tune.search=random", "tune.scheduler=fifo",
         "tune.num_samples=2", "tune.workers_per_trial=2", "tune.resources={cpu: 1, gpu: 0}"],
    )  # fmt: skip
    assert not ray.is_initialized()
    try:
        result = run_sweep(cfg, tracking_uri=uri, storage=storage, num_cpus=3)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    _, children = runs_of(client, result.experiment_id)
    assert result.failed == 0 and len(children) == 2
    assert all(c.info.status == "FINISHED" and c.data.tags["epochs_trained"] == "2" for c in children)
    assert {c.data.tags["world_size"] for c in children} == {"2"}
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")] == [1, 2]
    first, second = sorted(children, key=lambda c: c.info.start_time)
    assert second.info.start_time >= first.info.end_time - 1000  # in sequence: the cluster holds one at a time
