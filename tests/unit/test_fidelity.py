"""Under ASHA, HyperOpt learns each trial's rank by the rung it reached (`fidelity.RungRanked`), not the last result
of a trial ASHA stopped early (ray-project/ray#6056); ASHA's rungs come from its public parameters."""

import pytest
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import SearchGenerator

from raytune_suite.config import load_config
from raytune_suite.run.tuner import param_space
from raytune_suite.search import hyperopt_record
from raytune_suite.search.fidelity import RungRanked, milestones
from raytune_suite.search.schedulers import asha_rungs
from raytune_suite.search.searchers import SEARCHERS
from tests.conftest import EXPERIMENTS


def started(*overrides):
    cfg = load_config(EXPERIMENTS / "movielens_mf.yaml", ["train.epochs=9", "tune.n_initial_points=20", *overrides])
    searcher = SEARCHERS["hyperopt"](cfg, 4)
    assert SearchGenerator(searcher).set_search_properties(cfg.tune.metric, cfg.tune.mode, param_space(cfg))
    return searcher


def run(searcher, trial_id, curve):
    searcher.suggest(trial_id)
    results = [{"val_rmse": v, "training_iteration": e} for e, v in enumerate(curve, 1)]
    for result in results[:-1]:
        searcher.on_trial_result(trial_id, result)
    searcher.on_trial_complete(trial_id, result=results[-1])


def losses(searcher) -> list[float]:
    docs = hyperopt_record.base_searcher(searcher).get_state()["hyperopt_trials"].trials
    return [d["result"].get("loss") for d in docs]


def test_a_trial_stopped_at_the_first_rung_ranks_below_one_that_trained_to_the_end():
    """A fast starter that ASHA stopped at epoch 1 (rmse 0.90 there) beside a trial that won its rungs and ended
    at 0.95 after 9 epochs: told the last results, TPE would rank the stopped trial best."""
    searcher = started()
    run(searcher, "fast_starter", [0.90])
    run(searcher, "finisher", [1.10, 1.05, 1.00, 0.99, 0.98, 0.97, 0.96, 0.955, 0.95])
    fast_starter, finisher = losses(searcher)
    assert finisher < fast_starter  # HyperOpt minimises its loss: the finisher is the better trial


def test_within_a_rung_the_metric_there_decides_and_a_diverged_trial_is_last():
    searcher = started()
    run(searcher, "a", [1.2, 1.1, 1.05])  # stopped at rung 3 with 1.05
    run(searcher, "b", [1.3, 1.2, 1.00])  # stopped at rung 3 with 1.00: better
    run(searcher, "c", [0.8])  # stopped at rung 1
    searcher.suggest("d")
    searcher.on_trial_result("d", {"val_rmse": 0.7, "training_iteration": 1})
    searcher.on_trial_complete("d", result={"val_rmse": 1e30, "training_iteration": 2, "diverged": 1.0})
    a, b, c, d = losses(searcher)
    assert b < a < c < d


def test_plain_hyperopt_without_asha_is_told_the_metric_itself():
    searcher = started("tune.scheduler=fifo")
    run(searcher, "x", [1.0, 0.9])
    assert losses(searcher) == [0.9]


@pytest.mark.parametrize(("grace", "rf", "max_t"), [(1, 3, 8), (1, 3, 27), (2, 3, 8), (20, 3, 200), (1, 2.5, 10)])
def test_asha_rungs_are_the_milestones_rays_asha_records_at(grace, rf, max_t):
    (bracket,) = ASHAScheduler(max_t=max_t, grace_period=grace, reduction_factor=rf)._brackets  # Ray's private state
    assert asha_rungs(grace, rf, max_t) == pytest.approx(sorted(m for m, _ in bracket._rungs))
    assert milestones(grace, rf, max_t)[-1] == max_t


def test_the_ranks_survive_a_save_and_restore(tmp_path):
    searcher = started()
    run(searcher, "a", [1.0, 0.9, 0.8])
    searcher.suggest("b")
    searcher.on_trial_result("b", {"val_rmse": 0.95, "training_iteration": 1})
    ranked = searcher.searcher
    assert isinstance(ranked, RungRanked)
    ranked.save(str(tmp_path / "searcher.pkl"))
    restored = started().searcher
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored._reached == ranked._reached
    assert losses(restored) == losses(searcher)
