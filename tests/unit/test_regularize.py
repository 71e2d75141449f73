import pytest
import torch
from torch import nn

from raytune_suite.train.regularize import l2_penalty


def test_l2_penalty_is_lambda_over_2m_times_sum_of_squared_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    lam, m = 0.7, 32
    weights = [model[0].weight, model[2].weight]
    expected = lam / (2 * m) * sum((w**2).sum().item() for w in weights)
    assert l2_penalty(model, lam, m).item() == pytest.approx(expected)


def test_l2_penalty_leaves_biases_alone_and_its_gradient_is_lambda_over_m_theta():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.bias.fill_(5.0)
    l2_penalty(model, lam=0.5, m=10).backward()
    torch.testing.assert_close(model.weight.grad, torch.tensor([[0.05, -0.1]]))
    assert model.bias.grad is None


def test_zero_lambda_adds_nothing():
    assert l2_penalty(nn.Linear(2, 2), 0.0, 8) == 0.0
