"""The budget plan (`validate --plan`): ASHA's rungs as Ray computes them, the trial-epochs and fits a sweep costs,
and the calibrated wall time; nothing starts and nothing is written."""

from __future__ import annotations

import re

import pytest
from ray.tune.schedulers import ASHAScheduler

from raytune_suite import cli
from raytune_suite.check import plan
from raytune_suite.check.fixed_costs import FixedCosts, estimate, measuring_config, split_fit
from raytune_suite.config import load_config
from tests.conftest import EXPERIMENTS

DIABETES = str(EXPERIMENTS / "diabetes_linear.yaml")
MNIST = str(EXPERIMENTS / "mnist_cnn.yaml")
RT_LOGREG = str(EXPERIMENTS / "rt_logreg.yaml")


def asha_config(grace: int, rf: float, max_t: int, trials: int = 20):
    return load_config(
        DIABETES,
        [
            f"train.epochs={max_t}",
            f"tune.asha.grace_period={grace}",
            f"tune.asha.reduction_factor={rf}",
            f"tune.num_samples={trials}",
        ],
    )


# (grace_period, reduction_factor, max_t) -> milestones worked out from grace · rf^k <= max_t
COMBOS = {
    (1, 3, 8): [1, 3],
    (1, 3, 9): [1, 3, 9],
    (1, 2, 10): [1, 2, 4, 8],
    (20, 3, 200): [20, 60, 180],
    (2, 4, 100): [2, 8, 32],
    (1, 2.5, 10): [1, 2.5, 6.25],
    (5, 3, 5): [5],
}


@pytest.mark.parametrize(("grace", "rf", "max_t"), list(COMBOS))
def test_asha_rungs_equal_rays_own_milestones(grace, rf, max_t):
    ray_asha = ASHAScheduler(max_t=max_t, grace_period=grace, reduction_factor=rf)
    (bracket,) = ray_asha._brackets
    budget = plan.budget(asha_config(grace, rf, max_t))
    assert list(budget.milestones) == sorted(m for m, _ in bracket._rungs)
    assert list(budget.milestones) == pytest.approx(COMBOS[grace, rf, max_t])


@pytest.mark.parametrize(("grace", "rf", "max_t"), list(COMBOS))
def test_the_epochs_rungs_are_decided_at_follow_rays_own_bracket(grace, rf, max_t):
    """plan.decisions restates the rule of Ray's private `_Bracket.on_result`: if Ray changes it, this fails."""
    from types import SimpleNamespace

    (bracket,) = ASHAScheduler(max_t=max_t, grace_period=grace, reduction_factor=rf)._brackets
    trial, rays = SimpleNamespace(trial_id="t"), []
    for epoch in range(1, max_t):
        before = {m for m, recorded in bracket._rungs if "t" in recorded}
        bracket.on_result(trial, epoch, 0.0)
        rays += [(m, epoch) for m, recorded in bracket._rungs if "t" in recorded and m not in before]
    assert plan.decisions(tuple(sorted(m for m, _ in bracket._rungs)), max_t) == rays


def test_a_milestone_at_max_t_decides_nothing_and_a_fractional_one_is_decided_at_the_next_epoch():
    at_max_t = plan.budget(asha_config(1, 3, 9, trials=27))
    assert [r.epoch for r in at_max_t.rungs] == [1, 3]  # at epoch 9 the scheduler stops every trial anyway
    assert at_max_t.finishing == pytest.approx(27 / 9)
    fractional = plan.budget(asha_config(1, 2.5, 10))
    assert [(r.milestone, r.epoch) for r in fractional.rungs] == [(1, 1), (2.5, 3), (6.25, 7)]


def test_trials_reaching_each_rung_shrink_by_the_reduction_factor():
    budget = plan.budget(asha_config(1, 2, 10, trials=16))
    assert [r.trials for r in budget.rungs] == [16, 8, 4, 2]
    assert budget.finishing == 1


def test_expected_trial_epochs_of_mnist_cnn_worked_by_hand():
    budget = plan.budget(load_config(MNIST, []))  # 20 trials, grace 1, reduction factor 3, 8 epochs
    # All 20 run epoch 1; 20/3 run epochs 2-3; 20/9 run epochs 4-8.
    assert budget.expected == pytest.approx(20 * 1 + 20 / 3 * 2 + 20 / 9 * 5)
    assert budget.worst == 20 * 8


def test_expected_trial_epochs_with_a_fractional_reduction_factor_worked_by_hand():
    budget = plan.budget(asha_config(1, 2.5, 10, trials=10))
    # Rungs decide at epochs 1, 3 and 7: 10 trials run 1 epoch, 4 run 2 more, 1.6 run 4 more, 0.64 the last 3.
    assert budget.expected == pytest.approx(10 * 1 + 4 * 2 + 1.6 * 4 + 0.64 * 3)


@pytest.mark.parametrize("scheduler", ["fifo", "pbt"])
def test_a_scheduler_that_stops_no_trial_has_worst_case_equal_to_expected(scheduler):
    cfg = load_config(MNIST, [f"tune.scheduler={scheduler}", "tune.search=random", "tune.num_samples=6"])
    budget = plan.budget(cfg)
    assert budget.worst == budget.expected == 6 * 8
    assert not budget.rungs


def test_tuned_epochs_under_fifo_cost_the_most_at_worst_and_their_mean_expected():
    cfg = load_config(
        MNIST, ["tune.scheduler=fifo", "tune.num_samples=4", "space.train.epochs={type: choice, values: [2, 4, 9]}"]
    )
    budget = plan.budget(cfg)
    assert budget.worst == 4 * 9
    assert budget.expected == 4 * 5


@pytest.mark.parametrize("folds", [5, 3])
def test_estimator_fits_are_trials_times_folds(folds):
    budget = plan.budget(load_config(RT_LOGREG, [f"cv.folds={folds}"]))  # a grid of 4 C × 2 penalties
    assert budget.unit == "fit"
    assert budget.worst == budget.expected == 8 * folds


def test_plan_creates_no_file_or_folder_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate", DIABETES, "--plan"]) == 0
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert "rung 1 (epoch 20): 30 trial(s) reach it" in out
    assert "worst case: 6,000 trial-epochs" in out


def test_calibrate_times_a_positive_seconds_per_epoch_and_a_wall_time(tmp_path, monkeypatch):
    # The command (`validate --plan --calibrate`) also measures the fixed costs, starting Ray:
    # tests/integration/test_plan_calibration.py runs it.
    monkeypatch.chdir(tmp_path)
    cfg = load_config(DIABETES, [])
    calibration = plan.calibrate(cfg, num_cpus=1)
    assert list(tmp_path.iterdir()) == []
    out = plan.format_plan(plan.budget(cfg), cfg, calibration)
    seconds = float(re.search(r"calibration: (\S+) s per epoch", out).group(1))
    assert seconds > 0
    assert "concurrency: 1 trial at once" in out
    assert re.search(r"wall time: ~1,422 trial-epochs × \S+ s / 1 ≈", out)


COSTS = FixedCosts(checks=3.0, ray_up=8.0, first_result=5.0, per_trial=0.2, per_report=0.05, publishing=2.5,
                   concurrency=2)  # fmt: skip


def test_the_estimate_adds_the_fixed_costs_in_the_parts_run_splits_its_time_into():
    # It was the work alone: 60 fits x 0.0314 s / 2 = 0.94 s for a 12-point SVC grid whose command took 44.9 s.
    got = estimate(COSTS, trials=12, reports=12, work_s=0.94, concurrency=2)
    assert got.startup == 3.0 + 8.0
    assert got.fit == pytest.approx(5.0 + 5 * 0.2 + 12 / 2 * 0.05 + 0.94)  # 6 waves of 2: 5 hand-overs
    assert got.publishing == 2.5 and got.total == pytest.approx(got.startup + got.fit + got.publishing)


def test_the_plan_prints_the_fixed_costs_and_the_estimate_split_as_run_splits_its_time():
    cfg = load_config(MNIST, [])  # 20 trials, ASHA: 44.4 trial-epochs expected, 160 at worst
    calibration = plan.Calibration(2.0, "one epoch", plan.local_concurrency(cfg, 2), 2, COSTS)
    out = plan.format_plan(plan.budget(cfg), cfg, calibration)
    assert ("fixed costs here: imports and checks 3.0 s, Ray's start 8.0 s, first result 5.0 s, then 0.2 s per trial "
            "and 0.05 s per reported epoch, publishing 2.5 s") in out  # fmt: skip
    fit = 5.0 + 9 * 0.2 + 44.4444 / 2 * 0.05 + 44.4444 * 2.0 / 2
    found = re.search(r"wall time: ≈ (\S+) s = start-up 11.0 s \+ fit\(\) (\S+) s \(work: ~44.4 trial-epochs × 2 s / 2 "
                      r"≈ 44 s\) \+ publishing 2.5 s \(worst case (\S+) min\)", out)  # fmt: skip
    assert found, out
    assert float(found.group(2)) == pytest.approx(fit, abs=0.5)
    assert float(found.group(1)) == pytest.approx(11.0 + fit + 2.5, abs=0.5)
    assert "not included" not in out


def test_the_measuring_sweeps_reports_split_into_first_result_hand_over_and_per_epoch():
    # Two processes, fit() at 100: process 1 runs a (reports 105, 105.1, 105.2) then c (105.5 ...): hand-over 0.3 s.
    stamps = {(1, "a"): [105.0, 105.1, 105.2], (2, "b"): [105.4, 105.5, 105.6], (1, "c"): [105.5, 105.6, 105.7],
              (2, "d"): [106.1, 106.2, 106.3]}  # fmt: skip
    first, per_trial, per_report = split_fit(stamps, 100.0)
    assert (first, per_trial, per_report) == pytest.approx((5.0, 0.4, 0.1))


def test_the_measuring_sweep_is_the_experiment_itself_small_fifo_and_random():
    mini = measuring_config(load_config(MNIST, []), trials=6)
    assert (mini.tune.search, mini.tune.scheduler, mini.tune.num_samples, mini.train.epochs) == ("random", "fifo", 6, 3)
    assert mini.space == load_config(MNIST, []).space and mini.experiment == "mnist_cnn"


def test_an_estimator_is_calibrated_by_one_cross_validation_fit():
    calibration = plan.calibrate(load_config(RT_LOGREG, []), num_cpus=2)
    assert calibration.seconds > 0
    assert calibration.parallel == 2  # two trials of one CPU at once, each fitting its folds one by one
    assert "fold 1 of 5" in calibration.what
