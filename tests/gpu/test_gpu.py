"""On real CUDA devices: fractional-GPU trials share a device, a DDP trial over NCCL, fp16 with its loss scaler
through a checkpoint and a resume, bf16, and the GPU busy while a sweep trains."""

import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import torch

from raytune_suite.config import load_config
from raytune_suite.run.sweep import run_sweep
from raytune_suite.train.trainable import CHECKPOINT_FILE, Trial, build_training, resume, run_epochs
from tests.conftest import EXPERIMENTS
from tests.integration.test_sweep import runs_of

pytestmark = [pytest.mark.integration, pytest.mark.gpu]

SMALL = ["data.dataset=digits", "data.subset=600", "tune.search=random", "tune.scheduler=fifo", "space={}"]


def gpu_sweep(store, monkeypatch, *sets: str, num_gpus: int | None = None):
    uri, client, storage = store
    ray_tmp = tempfile.mkdtemp(prefix="rts-ray-gpu-")
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    try:
        result = run_sweep(load_config(EXPERIMENTS / "mnist_cnn.yaml", [*SMALL, *sets]), tracking_uri=uri,
                           storage=storage, num_gpus=num_gpus)  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return result, runs_of(client, result.experiment_id)[1], client


def test_two_half_gpu_trials_share_one_device_at_the_same_time(store, monkeypatch):
    result, children, _ = gpu_sweep(store, monkeypatch, "train.epochs=3", "tune.num_samples=2",
                                         "tune.resources={cpu: 1, gpu: 0.5}", num_gpus=1)  # fmt: skip
    assert result.failed == 0 and len(children) == 2
    assert {c.data.tags["device"] for c in children} == {"cuda"}
    assert len({c.data.tags["gpu_ids"] for c in children}) == 1  # the same device
    first, second = sorted(children, key=lambda c: c.info.start_time)
    assert second.info.start_time < first.info.end_time  # at the same time


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL puts one rank per device: needs 2 GPUs")
def test_a_ddp_trial_trains_over_nccl_on_two_gpus(store, monkeypatch):
    result, children, _ = gpu_sweep(store, monkeypatch, "train.epochs=2", "tune.num_samples=1",
                                         "tune.workers_per_trial=2", "tune.resources={cpu: 1, gpu: 1}")  # fmt: skip
    assert result.failed == 0
    (child,) = children
    assert child.data.tags["world_size"] == "2" and child.data.tags["device"].startswith("cuda")


def training_on_cuda(precision: str, epochs: int = 2):
    overrides = [*SMALL, f"train.epochs={epochs}", f"train.precision={precision}"]
    cfg = load_config(EXPERIMENTS / "mnist_cnn.yaml", overrides)
    suite = {"experiment": cfg.experiment, "seed": 0, "split_seed": 0, "metric": cfg.tune.metric,
             "mode": cfg.tune.mode, "checkpoint_every": 1}  # fmt: skip
    trial = Trial.from_config({**cfg.fixed_sections(), "suite": suite})
    return build_training(trial, trial.experiment.load_data(trial.data, 0), torch.device("cuda"))


def test_fp16_keeps_its_loss_scaler_through_a_checkpoint_and_a_resume(tmp_path):
    from ray import tune

    first = training_on_cuda("fp16")
    assert first.scaler.is_enabled()
    saved = {}

    def report(metrics, checkpoint_dir):
        assert "diverged" not in metrics
        if checkpoint_dir:
            shutil.copy(os.path.join(checkpoint_dir, CHECKPOINT_FILE), tmp_path / CHECKPOINT_FILE)
            saved["scale"] = first.scaler.get_scale()

    run_epochs(first, 0, report)
    second = training_on_cuda("fp16")
    assert resume(second, tune.Checkpoint.from_directory(str(tmp_path))) == 2
    assert second.scaler.get_scale() == saved["scale"]


def test_bf16_trains_to_finite_metrics():
    training = training_on_cuda("bf16")
    reported = []
    run_epochs(training, 0, lambda metrics, _: reported.append(metrics))
    assert [m["epoch"] for m in reported] == [1, 2] and all("diverged" not in m for m in reported)
    assert reported[-1]["val_accuracy"] > 0.5


def utilisation_samples(stop: threading.Event, every_s: float = 0.5) -> list[int]:
    """nvidia-smi's utilisation.gpu (%) of device 0, sampled until `stop` is set."""
    samples: list[int] = []

    def sample() -> None:
        while not stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True, timeout=10)  # fmt: skip
            if out.returncode == 0 and out.stdout.strip().isdigit():
                samples.append(int(out.stdout.strip()))
            time.sleep(every_s)

    threading.Thread(target=sample, daemon=True).start()
    return samples


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs nvidia-smi")
def test_the_gpu_is_busy_while_a_sweep_trains(store, monkeypatch):
    stop = threading.Event()
    samples = utilisation_samples(stop)
    try:
        result, _, _ = gpu_sweep(store, monkeypatch, "data.dataset=mnist5k", "data.subset=null", "train.epochs=3",
                                 "tune.num_samples=2", "tune.resources={cpu: 1, gpu: 0.5}", num_gpus=1)  # fmt: skip
    finally:
        stop.set()
    print(
        f"GPU utilisation during the sweep: {len(samples)} samples, max {max(samples, default=0)} %, "
        f"mean {sum(samples) / max(1, len(samples)):.0f} %"
    )
    assert result.failed == 0 and max(samples, default=0) > 0
