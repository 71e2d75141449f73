"""benchmarks/tuning_efficiency.py's pure helpers: discretising a space, counting trial-epochs, best-so-far curves."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from raytune_suite.config import load_config
from raytune_suite.config.space import grid_size

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tuning_efficiency", REPO / "benchmarks" / "tuning_efficiency.py")
eff = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = eff  # dataclasses look their module up
_spec.loader.exec_module(eff)


@pytest.mark.parametrize(
    ("spec", "points", "values"),
    [
        ({"type": "loguniform", "low": 1e-2, "high": 1e3}, 3, [0.01, 3.162, 1000.0]),
        ({"type": "loguniform", "low": 1e-3, "high": 1e-1}, 2, [0.001, 0.1]),
        ({"type": "uniform", "low": 0.0, "high": 0.5}, 3, [0.0, 0.25, 0.5]),
        ({"type": "uniform", "low": 0.8, "high": 0.98}, 1, [0.89]),
        ({"type": "quniform", "low": 16, "high": 128, "q": 16}, 3, [16, 64, 128]),
        ({"type": "quniform", "low": 0, "high": 1, "q": 0.25}, 4, [0.0, 0.25, 0.75, 1.0]),
        ({"type": "randint", "low": 0, "high": 3}, 3, [0, 1, 2]),
        ({"type": "randint", "low": 0, "high": 3}, 2, [0, 2]),
        ({"type": "randint", "low": 1, "high": 100}, 3, [1, 50, 99]),
        ({"type": "choice", "values": ["adamw", "nesterov"]}, 3, ["adamw", "nesterov"]),
        ({"type": "grid", "values": [0.1, 1.0, 10.0]}, 2, [0.1, 1.0, 10.0]),
    ],
)
def test_discrete_values(spec, points, values):
    assert eff.discrete_values(spec, points) == values


def test_discretised_space_keeps_conditions_and_validates(tmp_path):
    """diabetes_linear: every parameter a choice, conditions kept; the suite accepts it and its grid is the product
    (l2 3 x lr 3 x schedule branches: constant 1, time 3, exponential 3, step 3)."""
    yaml = REPO / "experiments" / "diabetes_linear.yaml"
    cfg = load_config(yaml)
    raw = {s: {n: p.model_dump(exclude_none=True) for n, p in ps.items()} for s, ps in cfg.space.items()}
    discrete = eff.discretise_space(raw, 3)
    assert {spec["type"] for spec in discrete["train"].values()} == {"choice"}
    assert discrete["train"]["decay_rate"]["when"] == {"schedule": ["time", "exponential"]}
    assert discrete["train"]["step_size"]["values"] == [25, 50, 100]
    grid = load_config(yaml, ["space=" + json.dumps(discrete), "tune.search=grid", "tune.scheduler=fifo"])
    assert grid_size(grid.space, grid=True) == 3 * 3 * (1 + 3 + 3 + 3)
    lines = eff.describe_discretisation(raw, 3)
    assert "train.l2: loguniform [0.01, 1000] -> [0.01, 3.162, 1000.0]" in lines


def test_trial_counts_every_result_and_keeps_its_best():
    results = [{"val_rmse": 70.0}, {"val_rmse": 60.0}, {"val_rmse": 65.0}]
    assert eff.trial_from_results(results, "val_rmse", "min", 5.0) == eff.Trial(5.0, 3, 60.0)
    assert eff.trial_from_results(results, "val_rmse", "max", 5.0).best == 70.0
    assert eff.trial_from_results([{"val_rmse": float("nan")}], "val_rmse", "min", 1.0) == eff.Trial(1.0, 1, None)


def test_read_trials_from_a_sweep_folder(tmp_path):
    for name, values, mtime in [("a", [0.5, 0.7], 200.0), ("b", [0.6], 100.0)]:
        path = tmp_path / f"trial_{name}" / "result.json"
        path.parent.mkdir()
        path.write_text("".join(json.dumps({"val_accuracy": v, "training_iteration": i + 1}) + "\n"
                                for i, v in enumerate(values)))  # fmt: skip
        os.utime(path, (mtime, mtime))
    with (tmp_path / "trial_a" / "result.json").open("a") as cut:  # a driver killed mid-write
        cut.write('{"val_accuracy": 0.9')
    os.utime(tmp_path / "trial_a" / "result.json", (200.0, 200.0))
    (tmp_path / "tuner.pkl").write_text("")
    trials = eff.read_trials(tmp_path, "val_accuracy", "max")
    assert sorted(trials, key=lambda t: t.end) == [eff.Trial(100.0, 1, 0.6), eff.Trial(200.0, 2, 0.7)]
    assert eff.trial_epochs(trials) == 3


def test_best_so_far_orders_trials_by_their_end():
    trials = [eff.Trial(3.0, 20, 55.0), eff.Trial(1.0, 200, 60.0), eff.Trial(2.0, 60, None), eff.Trial(4.0, 20, 58.0)]
    assert eff.best_so_far(trials, "min") == [(200, 60.0), (260, 60.0), (280, 55.0), (300, 55.0)]
    assert eff.best_so_far([eff.Trial(1.0, 5, None)], "max") == [(5, None)]


def test_curve_at_steps_and_spread():
    curve = [(10, 0.5), (30, 0.7)]
    assert eff.curve_at(curve, [5, 10, 20, 30, 40]) == [None, 0.5, 0.5, 0.7, 0.7]
    assert eff.spread([3.0, None, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert eff.spread([None]) is None


def test_gridsearchcv_trials_one_cross_validation_each():
    trials = eff.gridsearchcv_trials([0.6, 0.7], 4.0)
    assert eff.best_so_far(trials, "max") == [(1, 0.6), (2, 0.7)]


def test_zoom_limits_leave_room_on_the_worse_side():
    assert eff.zoom_limits([58.0, 59.0], "min") == (57.5, 60.5)
    assert eff.zoom_limits([0.7, 0.8], "max") == pytest.approx((0.55, 0.85))
    assert eff.zoom_limits([2.0, 2.0], "min") == pytest.approx((1.99, 2.03))


class ScriptedTrial:
    """What optuna_params asks of an Optuna trial: `suggest_categorical`, answered from a script."""

    def __init__(self, answers: dict):
        self.answers, self.asked = answers, []

    def suggest_categorical(self, name, choices):
        assert self.answers[name] in choices
        self.asked.append(name)
        return self.answers[name]


SPACE = {
    "train": {
        "momentum": {"type": "choice", "values": [0.8, 0.9], "when": {"optimizer": ["nesterov"]}},
        "optimizer": {"type": "choice", "values": ["adamw", "nesterov"]},
    },
    "model": {"arch": {"type": "choice", "values": ["cnn", "mlp"]}},
}


@pytest.mark.parametrize(
    ("optimizer", "expected_train"),
    [("nesterov", {"optimizer": "nesterov", "momentum": 0.9}), ("adamw", {"optimizer": "adamw"})],
)
def test_optuna_suggests_a_conditional_parameter_only_inside_its_branch(optimizer, expected_train):
    trial = ScriptedTrial({"train.optimizer": optimizer, "train.momentum": 0.9, "model.arch": "mlp"})
    assert eff.optuna_params(trial, SPACE) == {"train": expected_train, "model": {"arch": "mlp"}}
    assert ("train.momentum" in trial.asked) == (optimizer == "nesterov")
    assert trial.asked.index("train.optimizer") == 0  # the parent is asked before its child


def test_resume_reads_back_the_rows_and_curves_it_wrote(tmp_path):
    plan = eff.Plan("torch", "val_accuracy", "max", ["grid+fifo", "random+asha"], {}, [], 4, 3, 8, [])
    args = type("Args", (), {"points": 3, "space": "discrete"})()
    rows = [
        {"strategy": "grid+fifo", "seed": 0, "trials": 4, "failed": 0, "best": 0.9, "trial_epochs": 32,
         "wall_s": 10.0, "fit_s": 8.0, "curve": [(8, 0.5), (16, 0.9)]},
        {"strategy": "random+asha", "seed": 1, "trials": 3, "failed": 1, "best": None, "trial_epochs": 3,
         "wall_s": 2.0, "fit_s": 1.5, "curve": [(1, None)]},
    ]  # fmt: skip
    eff.write_csvs(rows, tmp_path, "mnist_cnn", plan, args)
    assert eff.measured_rows(tmp_path, "mnist_cnn", 3, 8, 3) == rows
    assert eff.measured_rows(tmp_path, "mnist_cnn", 2, 8, 3) == []  # other points: measured on another grid
    assert [r["strategy"] for r in eff.measured_rows(tmp_path, "mnist_cnn", 3, 8, 5)] == ["grid+fifo"]  # budget


def test_equal_compute_compares_strategies_at_a_share_of_the_grids_trial_epochs():
    rows = [
        {"strategy": "grid+fifo", "seed": 0, "trial_epochs": 100, "curve": [(50, 0.5), (100, 0.9)]},
        {"strategy": "random+asha", "seed": 0, "trial_epochs": 12, "curve": [(4, 0.6), (12, 0.8)]},
        {"strategy": "random+asha", "seed": 1, "trial_epochs": 30, "curve": [(6, 0.7), (30, 0.95)]},
    ]
    text = eff.equal_compute_table(rows, ["grid+fifo", "random+asha"], shares=(0.05, 0.5))
    grid_line, random_line = text.splitlines()[-2:]
    assert grid_line.split()[1:] == ["none", "0.5", "[0.5,", "0.5]"]  # nothing ended within 5 trial-epochs
    # at 5: seed 0 has 0.6 (ended at 4), seed 1 nothing yet; at 50: both have ended, 0.8 and 0.95
    assert random_line.split()[1:] == ["0.6", "[0.6,", "0.6]", "0.875", "[0.8,", "0.95]"]
    assert eff.equal_compute_table(rows[1:], ["random+asha"]) == ""  # no grid: no share to take


@pytest.mark.parametrize(
    ("wins", "losses", "p"),
    [(0, 0, 1.0), (3, 3, 1.0), (5, 0, 0.0625), (8, 2, 0.109375), (9, 1, 0.021484375), (0, 10, 0.001953125)],
)
def test_sign_test_is_the_exact_two_sided_binomial(wins, losses, p):
    assert eff.sign_test_p(wins, losses) == pytest.approx(p)


def test_paired_table_compares_strategies_seed_by_seed():
    rows = [
        {"strategy": "hyperopt+asha", "seed": s, "best": b, "trial_epochs": e}
        for s, b, e in [(0, 0.90, 40), (1, 0.85, 50), (2, 0.80, 60), (3, 0.95, 10)]
    ] + [
        {"strategy": "random+asha", "seed": s, "best": b, "trial_epochs": e}
        for s, b, e in [(0, 0.80, 80), (1, 0.85, 50), (2, 0.81, 60)]  # no seed 3: only seeds run by both count
    ]
    (line,) = eff.paired_table(rows, "max").splitlines()[1:]
    assert "3 paired seeds: better in 1, tied in 1, worse in 1" in line
    assert "median difference +0" in line and "p = 1.00" in line and "100% of random+asha's" in line
    worse_is_lower = eff.paired_table(rows, "min")  # for a loss, the lower best wins
    assert "better in 1, tied in 1, worse in 1; median difference +0 " in worse_is_lower
    assert eff.paired_table(rows[:4], "max") == ""  # nothing to pair with


def test_noise_line_gives_the_spread_of_one_config_over_training_seeds():
    line = eff.noise_line([0.98, 0.982, None, 0.984], {"train": {"lr": 0.002}, "model": {"arch": "cnn"}})
    assert "lr=0.002, arch=cnn" in line and "3 training seeds" in line
    assert "median 0.982 [0.98, 0.984], sd 0.002" in line
    assert eff.noise_line([0.98], {}) == ""  # one value has no spread
