"""`tune.points_to_evaluate` with HyperOpt: the seed points come first, TPE learns from them, and it keeps
proposing after its start-up trials (Ray's own points_to_evaluate made TPE fail there with KeyError 'train/lr')."""

from ray.tune.search import SearchGenerator

from raytune_suite.config import load_config
from raytune_suite.run.tuner import param_space
from raytune_suite.search import hyperopt_record
from raytune_suite.search.searchers import SEARCHERS
from tests.conftest import EXPERIMENTS


def started_searcher(*overrides: str):
    cfg = load_config(EXPERIMENTS / "movielens_mf.yaml", ["tune.n_initial_points=2", *overrides])
    searcher = SEARCHERS["hyperopt"](cfg, 1)
    space = param_space(cfg)
    assert SearchGenerator(searcher).set_search_properties(cfg.tune.metric, cfg.tune.mode, space)
    return searcher, space


def test_seed_points_come_first_then_tpe_proposes_past_its_start_up_trials():
    searcher, _ = started_searcher("tune.points_to_evaluate=[{train: {lr: 0.003}}, {model: {dim: 64}}]")
    proposals = []
    for i in range(6):
        proposals.append(searcher.suggest(str(i)))
        searcher.on_trial_result(str(i), {"val_rmse": 1.0 + i / 10, "training_iteration": 1})
        searcher.on_trial_complete(str(i), {"val_rmse": 1.0 + i / 10, "training_iteration": 1})
    assert proposals[0]["train"]["lr"] == 0.003
    assert proposals[1]["model"]["dim"] == 64
    assert proposals[0]["model"]["init_std"] == 0.01  # the space's fixed values stay in the trial's config
    assert all(p is not None for p in proposals)
    # HyperOpt's record holds each seed point as the config of its trial, under its own labels
    docs = hyperopt_record.base_searcher(searcher).get_state()["hyperopt_trials"].trials
    assert docs[0]["misc"]["vals"]["train/lr"] == [0.003]
    assert len([d for d in docs if d["result"].get("status") == "ok"]) == 6
