"""The search benchmark's problems and statistics (benchmarks/searchbench): tables, snapping, regret, IQM,
bootstrap intervals, time to target, and the multi-fidelity Hartmann functions."""

import json

import numpy as np
import pytest

from benchmarks.searchbench import hartmann, stats
from benchmarks.searchbench.problems import Axis, TableProblem, TableSpec, table_spec_to_json
from benchmarks.searchbench.simulate import Trace


def hand_made_table(tmp_path, values, mode="max"):
    """A 2-axis table (lr on a log grid, optimizer a choice) with the given curves, one row per config."""
    spec = TableSpec(
        experiment="hand",
        axes=(Axis("train.lr", "log", (0.001, 0.01, 0.1)), Axis("train.optimizer", "choice", ("sgd", "adam"))),
    )
    configs = spec.configs()
    meta = {"metric": "acc", "mode": mode, "grace_period": 1, "reduction_factor": 3.0,
            "spec": table_spec_to_json(spec), "configs": configs}  # fmt: skip
    path = tmp_path / "hand.npz"
    np.savez_compressed(path, values=np.asarray(values, dtype=np.float32), seconds=np.arange(1, 7, dtype=np.float32),
                        meta=np.array(json.dumps(meta)))  # fmt: skip
    return TableProblem("hand", path), configs


CURVES = [[0.1, 0.2], [0.3, 0.5], [0.2, 0.4], [0.6, 0.9], [0.5, 0.45], [np.nan, np.nan]]  # 6 configs x 2 epochs


def test_a_table_returns_each_configs_curve_exactly_and_snaps_sampled_values_to_its_grid(tmp_path):
    problem, configs = hand_made_table(tmp_path, CURVES)
    assert [c["train.lr"] for c in configs] == [0.001, 0.001, 0.01, 0.01, 0.1, 0.1]
    curve, seconds = problem.curve({"train": {"lr": 0.0118, "optimizer": "adam"}})  # 0.0118 is nearest 0.01
    assert curve.tolist() == pytest.approx([0.6, 0.9]) and seconds == 4.0
    assert problem.curve({"train": {"lr": 0.0004, "optimizer": "sgd"}})[0].tolist() == pytest.approx([0.1, 0.2])


def test_a_log_axis_gives_every_grid_value_an_equally_wide_cell():
    axis = Axis("train.lr", "log", (0.001, 0.01, 0.1))
    spec = axis.spec()
    assert spec["type"] == "loguniform"
    assert spec["low"] == pytest.approx(0.001 / 10**0.5) and spec["high"] == pytest.approx(0.1 * 10**0.5)
    draws = np.exp(np.random.default_rng(0).uniform(np.log(spec["low"]), np.log(spec["high"]), 30_000))
    counts = np.unique([axis.snap(x) for x in draws], return_counts=True)[1]
    assert counts.min() / counts.max() > 0.95


def test_normalised_regret_is_0_at_the_best_config_and_1_at_the_median_one(tmp_path):
    problem, _ = hand_made_table(tmp_path, CURVES)
    # each config's best epoch: 0.2, 0.5, 0.4, 0.9, 0.5, diverged (never finite: the worst)
    assert problem.optimum == pytest.approx(0.9)
    assert problem.median == pytest.approx(0.45)  # the median of 0.2, 0.4, 0.5, 0.5, 0.9 and -inf
    assert problem.regret(0.9) == 0.0
    assert problem.regret(0.45) == pytest.approx(1.0)
    assert problem.regret(0.675) == pytest.approx(0.5)
    assert problem.regret(None) == 1.0
    assert problem.target == pytest.approx(0.9)  # the best 1 % of 6 configs is the best one


def test_regret_counts_the_other_way_when_lower_is_better(tmp_path):
    problem, _ = hand_made_table(tmp_path, [[3.0, 2.0], [5.0, 4.0], [1.0, 0.5], [9.0, 9.0], [7.0, 8.0], [6.0, 6.0]],
                                 mode="min")  # fmt: skip
    assert problem.optimum == 0.5 and problem.median == pytest.approx(5.0)
    assert problem.regret(0.5) == 0.0 and problem.regret(2.75) == pytest.approx(0.5)


def test_iqm_averages_the_middle_half():
    assert stats.iqm([1, 2, 3, 4, 100, -100, 5, 6]) == pytest.approx(3.5)  # drops -100, 1 and 6, 100
    assert stats.iqm([7] * 5) == 7


def test_the_bootstrap_interval_holds_the_iqm_and_narrows_with_more_seeds():
    rng = np.random.default_rng(1)
    few, many = rng.normal(10, 2, 8), rng.normal(10, 2, 200)
    lo, hi = stats.bootstrap_iqm(few)
    assert lo <= stats.iqm(few) <= hi
    lo_many, hi_many = stats.bootstrap_iqm(many)
    assert hi_many - lo_many < hi - lo
    assert lo_many < 10 < hi_many


def test_a_speedup_is_the_ratio_of_iqms_with_an_interval_around_it():
    base, twice_as_fast = np.arange(10, 30, dtype=float), np.arange(10, 30, dtype=float) / 2
    up, lo, hi = stats.speedup(base, twice_as_fast)
    assert up == pytest.approx(2.0)
    assert lo < 2.0 < hi


def test_a_trace_tells_the_best_within_a_budget_and_when_a_target_was_first_reached():
    trace = Trace(spent=[1, 2, 3, 4], clock=[1.0, 1.5, 3.0, 4.0], incumbent=[None, 0.3, 0.7, 0.7])
    assert trace.best_within(1) is None and trace.best_within(3.5) == 0.7
    assert trace.first_reaching(0.5, sign=1) == (3, 3.0)
    assert trace.first_reaching(0.8, sign=1) is None


@pytest.mark.parametrize("dims", [3, 6])
def test_hartmann_at_the_top_fidelity_is_the_true_function_with_its_known_minimum(dims):
    optimum = {3: (0.114614, 0.555649, 0.852547), 6: (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)}
    x = np.array([optimum[dims]])
    bias, noise = hartmann.PRESETS["terrible"]
    assert hartmann.hartmann(x, np.array([100.0]), bias, noise)[0] == pytest.approx(hartmann.MINIMUM[dims], abs=1e-4)
    # lower fidelities are flattened and noisier: never better than the truth, and the same on every call
    low = hartmann.hartmann(np.repeat(x, 3, axis=0), np.array([3.0, 10.0, 50.0]), bias, noise)
    assert (low > hartmann.MINIMUM[dims]).all()
    assert low.tolist() == hartmann.hartmann(np.repeat(x, 3, axis=0), np.array([3.0, 10.0, 50.0]), bias, noise).tolist()
