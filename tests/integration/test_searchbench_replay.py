"""The search benchmark's replay through a real Ray Tune `Tuner`: the replay trainable reports a table's curves
exactly, and the simulator makes the decisions `Tuner.fit()` makes (with one trial at a time, deterministic: the
same configs run in the same order, each for as many epochs)."""

import numpy as np
import pytest

from benchmarks.searchbench.problems import load_problem
from benchmarks.searchbench.replay import PROBLEM_KEY, describe, replay_trial, run_real
from benchmarks.searchbench.simulate import simulate
from benchmarks.searchbench.strategies import suite

pytestmark = pytest.mark.integration

TRIALS = 10


def test_the_replay_trainable_reports_a_tables_curve_exactly(ray_local, tmp_path):
    from ray import tune

    problem = load_problem("mnist_cnn")
    train = {"lr": tune.grid_search([0.001, 0.01]), "optimizer": "adamw", "weight_decay": 1e-05}
    tuner = tune.Tuner(
        tune.with_resources(replay_trial, {"cpu": 1}),
        param_space={PROBLEM_KEY: "mnist_cnn", "train": train, "model": {"arch": "cnn", "channels": 32}},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exact", verbose=0),
    )
    for result in tuner.fit():
        sections = {"train": result.config["train"], "model": result.config["model"]}
        reported = result.metrics_dataframe["val_accuracy"].to_numpy()
        assert reported.tolist() == pytest.approx(problem.curve(sections)[0].tolist())
        assert len(reported) == problem.epochs
        assert not np.allclose(reported, reported[0])  # a real curve, not one value repeated


@pytest.mark.slow
@pytest.mark.parametrize(
    ("problem_name", "search", "scheduler"), [("mnist_cnn", "hyperopt", "asha"), ("mfh3_good", "random", "asha")]
)
def test_the_simulator_takes_the_decisions_a_real_tuner_takes(ray_local, tmp_path, problem_name, search, scheduler):
    problem = load_problem(problem_name)
    build = suite(search, scheduler)
    real = run_real(problem, build(problem, 7, 1, num_samples=TRIALS), str(tmp_path), TRIALS)
    trace = simulate(problem, build(problem, 7, 1, num_samples=TRIALS), workers=1, budget=10**9)
    simulated = [(describe(problem, t.handle.config), t.trained) for t in trace.started]

    assert len(real) == TRIALS
    assert simulated == real
    assert any(epochs < problem.epochs for _, epochs in real), "ASHA stopped no trial: the check proves little"
    assert any(epochs == problem.epochs for _, epochs in real)
