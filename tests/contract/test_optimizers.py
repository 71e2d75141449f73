import pytest
import torch
from torch import nn

from raytune_suite.config import TrainConfig
from raytune_suite.train.optim import OPTIMIZERS, build_optimizer, param_groups


def quadratic_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1
    return nn.Linear(5, 1), x, y


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_reduces_the_loss_of_a_quadratic(name):
    model, x, y = quadratic_problem()
    opt = build_optimizer(model, TrainConfig(optimizer=name, lr=0.1))

    def loss():
        return ((model(x).squeeze(1) - y) ** 2).mean()

    before = loss().item()
    for _ in range(60):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.5 * before


@pytest.mark.parametrize(
    ("name", "cls", "momentum", "nesterov"),
    [("gd", torch.optim.SGD, 0.0, False), ("sgd", torch.optim.SGD, 0.0, False),
     ("momentum", torch.optim.SGD, 0.8, False), ("nesterov", torch.optim.SGD, 0.8, True)],
)  # fmt: skip
def test_sgd_family_is_configured_as_named(name, cls, momentum, nesterov):
    opt = build_optimizer(nn.Linear(2, 1), TrainConfig(optimizer=name, momentum=0.8))
    group = opt.param_groups[0]
    assert type(opt) is cls and group["momentum"] == momentum and group["nesterov"] is nesterov


def test_only_gd_is_full_batch():
    assert [n for n, s in OPTIMIZERS.items() if s.full_batch] == ["gd"]


def test_weight_decay_skips_biases_and_norms_unless_asked():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    groups = param_groups(model, 0.1, decay_norms_and_biases=False)
    assert [len(g["params"]) for g in groups] == [1, 3]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert len(param_groups(model, 0.1, decay_norms_and_biases=True)[0]["params"]) == 4


def test_adamw_decay_is_decoupled_from_the_gradient():
    p = nn.Parameter(torch.ones(1, 1))
    model = nn.Module()
    model.p = p
    opt = build_optimizer(model, TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.5))
    p.grad = torch.zeros(1, 1)
    opt.step()
    assert p.item() == pytest.approx(1 - 0.1 * 0.5)  # pure decay: no gradient, no Adam rescaling
