import math

import pytest
import torch

from raytune_suite.config import TrainConfig
from raytune_suite.train.schedules import (
    SCHEDULES,
    build_scheduler,
    cosine,
    exponential,
    step,
    time_based,
    warmup_cosine,
)


def lr_after(schedule: str, n_epochs: int, steps_per_epoch: int = 1, **train) -> list[float]:
    """The learning rate LambdaLR actually sets at the start of each epoch."""
    cfg = TrainConfig(schedule=schedule, lr=0.1, **train)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    lrs = []
    for _ in range(n_epochs):
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            opt.step()
            sched.step()
    return lrs


@pytest.mark.parametrize("t", [0, 1, 10])
def test_time_decay_is_lr_over_one_plus_kt(t):
    assert time_based(t, decay_rate=0.5) == pytest.approx(1 / (1 + 0.5 * t))
    assert lr_after("time", t + 1, decay_rate=0.5)[t] == pytest.approx(0.1 / (1 + 0.5 * t))


def test_time_decay_within_an_epoch_uses_fractional_t():
    lrs = []
    cfg = TrainConfig(schedule="time", lr=0.1, decay_rate=1.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch=4)
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1 / (1 + t / 4) for t in range(4)])


def test_step_decay_drops_exactly_at_its_boundary():
    assert step(4.999, step_size=5, gamma=0.5) == 1.0
    assert step(5.0, step_size=5, gamma=0.5) == 0.5
    assert step(10.0, step_size=5, gamma=0.5) == 0.25
    assert lr_after("step", 7, step_size=3, gamma=0.1) == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001])


def test_exponential_decay_is_e_to_minus_kt():
    assert exponential(2.0, decay_rate=0.3) == pytest.approx(math.exp(-0.6))


def test_cosine_runs_from_lr_to_its_floor():
    assert cosine(0, total=10, min_lr_ratio=0.1) == pytest.approx(1.0)
    assert cosine(5, total=10, min_lr_ratio=0.1) == pytest.approx(0.55)
    assert cosine(10, total=10, min_lr_ratio=0.1) == pytest.approx(0.1)


def test_warmup_rises_linearly_then_decays_by_cosine():
    assert warmup_cosine(0, total=10, warmup=2, min_lr_ratio=0) == 0
    assert warmup_cosine(1, total=10, warmup=2, min_lr_ratio=0) == pytest.approx(0.5)
    assert warmup_cosine(2, total=10, warmup=2, min_lr_ratio=0) == pytest.approx(1.0)
    assert warmup_cosine(6, total=10, warmup=2, min_lr_ratio=0) == pytest.approx(0.5)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_starts_at_most_at_lr_and_never_goes_negative(name):
    lrs = lr_after(name, 12, steps_per_epoch=3, epochs=12, warmup_epochs=1)
    assert all(0 <= lr <= 0.1 + 1e-12 for lr in lrs)
