"""Fractional GPUs with Ray's logical GPUs: a CPU machine that tells Ray it has 4 GPUs.

8 trials at {cpu: 0.25, gpu: 0.5} must all run at once (a barrier actor proves it), two per GPU, each told its own
GPU by Ray; with CPU-only torch every trial trains on the CPU after one warning. On a real GPU box the same
config puts two trials on each device.
"""

import shutil
import tempfile
from collections import Counter

import pytest

from raytune_suite.config import load_config
from raytune_suite.run.sweep import run_sweep
from raytune_suite.train.trainable import train_trial
from tests.integration.test_sweep import runs_of

pytestmark = pytest.mark.integration

TRIALS = 8


@pytest.fixture(scope="module")
def ray_with_logical_gpus():
    import ray

    temp_dir = tempfile.mkdtemp(prefix="rts-ray-gpu-")
    ray.init(address="local", num_cpus=2, num_gpus=4, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def trainable_after_barrier(config):
    """The real trainable, entered only once all 8 trials hold their resources at the same time."""
    import ray

    barrier = ray.get_actor("barrier")
    ray.get(barrier.arrive.remote())
    ray.get(barrier.wait_all.remote(), timeout=240)
    train_trial(config)


def make_barrier(parties: int):
    import asyncio

    import ray

    @ray.remote(num_cpus=0)
    class Barrier:
        def __init__(self):
            self.arrived = 0
            self.all_here = asyncio.Event()

        def arrive(self):
            self.arrived += 1
            if self.arrived == parties:
                self.all_here.set()

        async def wait_all(self):
            await self.all_here.wait()

    return Barrier.options(name="barrier").remote()


def test_eight_half_gpu_trials_run_at_once_two_per_logical_gpu(ray_with_logical_gpus, store, mnist_yaml):
    uri, client, storage = store
    barrier = make_barrier(TRIALS)  # noqa: F841  (kept alive by this reference)
    cfg = load_config(
        mnist_yaml,
        ["data.dataset=digits", "data.subset=300", "train.epochs=1", "tune.search=random", "tune.scheduler=fifo",
         f"tune.num_samples={TRIALS}", "tune.resources={cpu: 0.25, gpu: 0.5}"],
    )  # fmt: skip
    result = run_sweep(cfg, tracking_uri=uri, storage=storage, trainable=trainable_after_barrier)

    _, children = runs_of(client, result.experiment_id)
    assert result.failed == 0 and len(children) == TRIALS
    gpu_ids = [c.data.tags["gpu_ids"] for c in children]
    assert all("," not in g for g in gpu_ids), gpu_ids  # one GPU each
    assert Counter(gpu_ids) == {"0": 2, "1": 2, "2": 2, "3": 2}
    assert {c.data.tags["device"] for c in children} == {"cpu"}  # CPU torch: the fallback
