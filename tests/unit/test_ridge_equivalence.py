"""The guide's regularised linear regression, trained by the suite's own trainable, lands on Ridge's closed form.

With `optimizer: gd` (full batch), the regression task's ½·MSE and `train.l2` = λ, the loss is
(1/2m)Σ(h(x)−y)² + (λ/2m)Σθ² with the bias unpenalised: m times smaller than Ridge's ‖y − Xθ − θ₀‖² + λ‖θ‖²,
so both have the same minimiser.
"""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from raytune_suite.config import load_config
from raytune_suite.run.tuner import param_space
from raytune_suite.train.optim import build_optimizer
from raytune_suite.train.schedules import build_scheduler
from raytune_suite.train.trainable import Trial, cached_data, steps_per_epoch, train_epoch
from tests.conftest import EXPERIMENTS

# 2/λmax of the standardised diabetes features is ≈ 0.48; the smallest eigenvalue (≈ 0.009) sets the step count.
LR, STEPS = 0.4, 4000


def diabetes_trial(lam: float) -> Trial:
    overrides = ["train.optimizer=gd", f"train.l2={lam}", f"train.lr={LR}", "train.schedule=constant",
                 "train.weight_decay=0", f"train.epochs={STEPS}"]  # fmt: skip
    cfg = load_config(EXPERIMENTS / "diabetes_linear.yaml", overrides)
    config = param_space(cfg)
    config.update(cfg.fixed_sections())  # the fixed values, not the search space's samplers
    return Trial.from_config(config)


@pytest.fixture
def one_thread():
    """Thousands of tiny steps: with 2 threads on a busy 2-CPU machine each step waits on the other (25× slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("lam", [0.5, 10.0, 200.0])
def test_gradient_descent_with_the_l2_penalty_reaches_the_ridge_closed_form(lam, one_thread):
    trial = diabetes_trial(lam)
    data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.seed)
    torch.manual_seed(0)
    model = trial.experiment.build_model(trial.model, data.info)
    optimizer = build_optimizer(model, trial.train)
    scheduler = build_scheduler(optimizer, trial.train, steps_per_epoch(trial, len(data.train_y)))
    gen = torch.Generator().manual_seed(0)
    for _ in range(trial.train.epochs):
        train_epoch(model, data, optimizer, scheduler, trial, gen, "cpu")

    ridge = Ridge(alpha=lam).fit(data.train_x.double().numpy(), data.train_y.double().numpy())
    np.testing.assert_allclose(model.weight.detach().double().numpy().ravel(), ridge.coef_, atol=1e-3, rtol=0)
    assert model.bias.item() == pytest.approx(ridge.intercept_, abs=1e-3)
