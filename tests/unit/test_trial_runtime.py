"""The one trial runtime (`trainable.run_epochs`), which the single-process trainable, every DDP worker and the
planner's calibration share: the fp16 loss scaler lives across epochs and in every checkpoint, a resumed trial gets
it back, and the checkpoint policy (checkpoint_every, the last epoch, each new best) is the loop's own."""

import os

import torch

from raytune_suite.config import load_config
from raytune_suite.train.trainable import CHECKPOINT_FILE, Trial, build_training, resume, run_epochs
from tests.conftest import EXPERIMENTS


def training_of(*overrides):
    cfg = load_config(EXPERIMENTS / "mnist_cnn.yaml", ["data.dataset=digits", "data.subset=200", "space={}",
                                                       "model.channels=4", "model.hidden=8", *overrides])  # fmt: skip
    suite = {"experiment": cfg.experiment, "seed": 0, "split_seed": 0, "metric": cfg.tune.metric,
             "mode": cfg.tune.mode, "checkpoint_every": cfg.tune.checkpoint_every}  # fmt: skip
    trial = Trial.from_config({**cfg.fixed_sections(), "suite": suite})
    data = trial.experiment.load_data(trial.data, 0)
    return build_training(trial, data, torch.device("cpu"))


class Recorder:
    """`report` as the loop calls it: keeps each epoch's metrics and, where one was written, its checkpoint."""

    def __init__(self):
        self.epochs, self.checkpoints = [], {}

    def __call__(self, metrics, checkpoint_dir):
        self.epochs.append(metrics["epoch"])
        if checkpoint_dir:
            self.checkpoints[metrics["epoch"]] = torch.load(os.path.join(checkpoint_dir, CHECKPOINT_FILE),
                                                            weights_only=False)  # fmt: skip


def test_the_loss_scaler_lives_across_epochs_and_in_every_checkpoint():
    training = training_of("train.epochs=3")
    # fp16's scaler on CUDA; an enabled CPU scaler that doubles its scale every step shows the same bookkeeping here
    training.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4, growth_interval=1)
    report = Recorder()
    run_epochs(training, 0, report)
    scales = [report.checkpoints[e]["scaler"]["scale"] for e in (1, 2, 3)]
    assert scales[0] > 2.0**4 and scales[0] < scales[1] < scales[2]  # one scaler, never a fresh one per epoch
    assert scales[2] == training.scaler.get_scale()


def test_a_resumed_trial_gets_its_scaler_back(tmp_path):
    first = training_of("train.epochs=2")
    first.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4, growth_interval=1)
    report = Recorder()
    run_epochs(first, 0, report)
    torch.save(report.checkpoints[2], tmp_path / CHECKPOINT_FILE)
    from ray import tune

    second = training_of("train.epochs=2")
    second.scaler = torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=1)
    assert resume(second, tune.Checkpoint.from_directory(str(tmp_path))) == 2
    assert second.scaler.get_scale() == first.scaler.get_scale()


def test_checkpoints_come_every_checkpoint_every_epochs_at_the_last_and_at_each_new_best():
    training = training_of("train.epochs=4", "tune.checkpoint_every=3", "train.lr=1.0e-12", "model.batch_norm=false")
    report = Recorder()
    run_epochs(training, 0, report)
    assert report.epochs == [1, 2, 3, 4]
    assert sorted(report.checkpoints) == [1, 3, 4]  # 1: the first best; 3: every 3rd; 4: the last
