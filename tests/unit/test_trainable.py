import torch

from raytune_suite.config import load_config
from raytune_suite.run.tuner import param_space
from raytune_suite.train.optim import build_optimizer
from raytune_suite.train.schedules import build_scheduler
from raytune_suite.train.trainable import (
    Trial,
    cached_data,
    finite_metrics,
    restore_checkpoint,
    save_checkpoint,
    steps_per_epoch,
    train_epoch,
)


def digits_trial(mnist_yaml, overrides=(), **train) -> Trial:
    cfg = load_config(mnist_yaml, ["data.dataset=digits", "data.subset=300", *overrides])
    config = param_space(cfg)
    for section in ("data", "model", "train"):
        config[section] = cfg.fixed_sections()[section]
    config["train"].update(train)
    return Trial.from_config(config)


class _Dir:
    def __init__(self, path):
        self.path = path

    def as_directory(self):
        import contextlib

        return contextlib.nullcontext(self.path)


def fresh(trial: Trial):
    data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.seed)
    torch.manual_seed(0)
    model = trial.experiment.build_model(trial.model, data.info)
    opt = build_optimizer(model, trial.train)
    sched = build_scheduler(opt, trial.train, steps_per_epoch(trial, len(data.train_y)))
    return data, model, opt, sched, torch.Generator().manual_seed(0)


def test_resuming_from_a_checkpoint_trains_exactly_as_without_interruption(mnist_yaml, tmp_path):
    trial = digits_trial(mnist_yaml, schedule="step", step_size=1, gamma=0.5, optimizer="momentum")
    data, model, opt, sched, gen = fresh(trial)
    for _ in range(2):
        train_epoch(model, data, opt, sched, trial, gen, "cpu")
    straight = [p.detach().clone() for p in model.parameters()]

    data, model, opt, sched, gen = fresh(trial)
    train_epoch(model, data, opt, sched, trial, gen, "cpu")
    save_checkpoint(str(tmp_path), model, opt, sched, 1, gen)
    data, model, opt, sched, gen = fresh(trial)
    assert restore_checkpoint(_Dir(str(tmp_path)), model, opt, sched, gen) == 1
    assert opt.param_groups[0]["lr"] == trial.train.lr * 0.5
    train_epoch(model, data, opt, sched, trial, gen, "cpu")
    for a, b in zip(straight, model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_gd_takes_one_full_batch_step_per_epoch(mnist_yaml):
    trial = digits_trial(mnist_yaml, optimizer="gd")
    data, *_ = fresh(trial)
    assert steps_per_epoch(trial, len(data.train_y)) == 1


def test_a_diverged_objective_becomes_the_worst_finite_value_and_the_trial_is_flagged(mnist_yaml):
    trial = digits_trial(mnist_yaml)
    out = finite_metrics({"val_accuracy": 0.1, "val_loss": float("inf"), "lr": 0.1}, trial.objective)
    assert out == {"val_accuracy": -1e30, "val_loss": float("inf"), "lr": 0.1, "diverged": 1.0}
    assert finite_metrics({"val_accuracy": 0.5, "lr": 0.1}, trial.objective) == {"val_accuracy": 0.5, "lr": 0.1}
