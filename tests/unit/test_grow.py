"""grow.py without a Ray cluster: the warm start of a grown sweep's HyperOpt searcher, and the `--num-samples` rule.

The earlier trials are written as Ray writes them (a trial folder with `params.json` and `result.json`), their
configs proposed by the suite's own searcher over mnist_cnn's space, which has conditional parameters.
"""

import json
import math

import hyperopt.rand
import pytest

from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from raytune_suite.run import grow
from raytune_suite.run.tuner import param_space
from raytune_suite.search import hyperopt_record
from raytune_suite.search.searchers import SEARCHERS
from tests.conftest import EXPERIMENTS

EARLIER = 9
N_INITIAL = 3


@pytest.fixture
def cfg():
    """mnist_cnn's space (optimizer -> momentum and arch -> channels are conditional), HyperOpt + ASHA (RungRanked);
    pure TPE after start-up (no random_fraction), so any random proposal is a start-up one."""
    overrides = ["data.dataset=digits", "train.epochs=3", f"tune.num_samples={EARLIER}",
                 f"tune.n_initial_points={N_INITIAL}", "tune.seed=5", "tune.random_fraction=0"]  # fmt: skip
    return load_config(EXPERIMENTS / "mnist_cnn.yaml", overrides)


def searcher_of(cfg):
    """The searcher a sweep of `cfg` gets, given its space as Tune gives it."""
    searcher = SEARCHERS["hyperopt"](cfg, 2)
    searcher.set_search_properties(cfg.tune.metric, cfg.tune.mode, param_space(cfg))
    return searcher


def accuracy(config: dict, epoch: int) -> float:
    """A made-up learning curve: best near lr = 10^-2.5, rising with the epochs."""
    return 0.9 - abs(math.log10(config["train"]["lr"]) + 2.5) / 4 + 0.02 * epoch


def record_sweep(cfg, folder, stopped_at: dict[int, int] = ()) -> tuple[list[str], object]:
    """Run EARLIER trials through the sweep's searcher as Tune would, writing each trial's folder as Ray does; a
    trial in `stopped_at` ends after that many epochs (ASHA stopped it). Returns the trial ids and that searcher."""
    searcher, ids = searcher_of(cfg), []
    for i in range(EARLIER):
        trial_id = f"abc_{i:05d}"
        config = searcher.suggest(trial_id)
        results = [{cfg.tune.metric: accuracy(config, e), "training_iteration": e, "config": config}
                   for e in range(1, dict(stopped_at).get(i, 3) + 1)]  # fmt: skip
        for result in results:
            searcher.on_trial_result(trial_id, result)
        searcher.on_trial_complete(trial_id, result=results[-1])
        trial_dir = folder / f"trial_{trial_id}"
        trial_dir.mkdir()
        (trial_dir / "params.json").write_text(json.dumps(config))
        (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in results))
        ids.append(trial_id)
    return ids, searcher


def hyperopt_docs(searcher) -> list[dict]:
    return hyperopt_record.base_searcher(searcher).get_state()["hyperopt_trials"].trials


def warm(cfg, folder, ids, failed=()):
    searcher = grow.Replayed(SEARCHERS["hyperopt"](cfg, 2), str(folder), ids, list(failed))
    assert searcher.set_search_properties(cfg.tune.metric, cfg.tune.mode, param_space(cfg))
    return searcher


@pytest.fixture
def rand_calls(monkeypatch):
    """Counts HyperOpt's random start-up proposals (TPE calls `rand.suggest` while it has too few trials)."""
    calls = []
    original = hyperopt.rand.suggest

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(hyperopt.rand, "suggest", counted)
    return calls


def test_hyperopt_vals_are_what_hyperopt_records_for_its_own_proposals(cfg):
    """The label mapping the replay uses, checked against HyperOpt itself: conditional branches, choices as
    indices, integers, and nothing for a parameter outside its branch."""
    searcher, space = searcher_of(cfg), param_space(cfg)
    branches = set()
    for i in range(12):
        config = searcher.suggest(str(i))
        (doc,) = [d for d in hyperopt_docs(searcher) if d["tid"] == i]
        recorded = {label: [float(v) for v in values] for label, values in doc["misc"]["vals"].items() if values}
        told = hyperopt_record.hyperopt_vals(space, config)
        mapped = {label: [float(v) for v in values] for label, values in told.items()}
        assert mapped == recorded
        branches.add((config["train"]["optimizer"]["_value"], config["model"]["arch"]["_value"]))
        searcher.on_trial_complete(str(i), result={cfg.tune.metric: 0.5, "training_iteration": 3})
    assert len(branches) > 1, "every proposal took the same branches: the conditionals went untested"


def test_warm_started_searcher_holds_every_earlier_trial_then_proposes_with_tpe(cfg, tmp_path, rand_calls):
    ids, _ = record_sweep(cfg, tmp_path)
    space = param_space(cfg)

    searcher = warm(cfg, tmp_path, ids, failed=[ids[4]])

    # Before its first proposal HyperOpt holds every earlier trial as it ran: its config and its outcome. The failed
    # one is no observation (HyperOpt drops a trial in error from its list, as it did during the sweep).
    docs = hyperopt_docs(searcher)
    assert searcher.replayed == EARLIER and len(docs) == EARLIER - 1
    assert {d["result"].get("status") for d in docs} == {"ok"}
    for doc, trial_id in zip(docs, ids[:4] + ids[5:], strict=True):
        config = json.loads((tmp_path / f"trial_{trial_id}" / "params.json").read_text())
        held = {label: values for label, values in doc["misc"]["vals"].items() if values}
        assert held == hyperopt_record.hyperopt_vals(space, config)

    rand_calls.clear()  # the replay's own proposals (discarded) may have been random
    proposal = searcher.suggest("new_00000")
    assert rand_calls == [], "the first new proposal was one of HyperOpt's random start-up points"

    # Without the warm start the same searcher, same seed, proposes a random start-up point, and another config.
    fresh = searcher_of(cfg)
    assert fresh.suggest("new_00000") != proposal
    assert rand_calls, "a fresh searcher made no random start-up proposal: this test could not tell the difference"


def test_replay_tells_hyperopt_the_outcomes_the_sweep_told_it(cfg, tmp_path):
    """Through the same wrappers (under ASHA the factory may rank trials by the rung they reached), so the warm
    searcher holds the very losses the sweep's searcher held, trials ASHA stopped early included."""
    ids, sweep_searcher = record_sweep(cfg, tmp_path, stopped_at={0: 1, 1: 1, 2: 1})
    searcher = warm(cfg, tmp_path, ids)
    assert [d["result"] for d in hyperopt_docs(searcher)] == [d["result"] for d in hyperopt_docs(sweep_searcher)]


def test_random_search_grows_with_a_seed_of_its_own():
    seeds = {grow.growth_seed(0, trials) for trials in (6, 7, 12)}
    assert len(seeds) == 3 and 0 not in seeds and all(0 <= s < 2**32 for s in seeds)
    assert grow.growth_seed(0, 6) == grow.growth_seed(0, 6)  # a growth resumed fresh draws the same configs


def test_num_samples_must_add_trials_unless_it_continues_an_unfinished_growth(cfg, tmp_path):
    sweep = str(tmp_path)
    grow.check_growth(cfg, sweep, EARLIER + 1)
    for fewer in (EARLIER, EARLIER - 1):
        with pytest.raises(ConfigError, match=rf"--num-samples {fewer}: the sweep already has {EARLIER} trials"):
            grow.check_growth(cfg, sweep, fewer)

    grow.save_stages(sweep, [grow.StageRecord(EARLIER, complete=True), grow.StageRecord(12, ["a"], [])])
    grow.check_growth(cfg, sweep, 12)  # the growth to 12 was interrupted: the same command continues it
    grow.save_stages(sweep, [grow.StageRecord(EARLIER, complete=True), grow.StageRecord(12, ["a"], [], True)])
    with pytest.raises(ConfigError, match="the sweep already has 12 trials"):
        grow.check_growth(cfg, sweep, 12)


def test_a_grid_sweep_does_not_grow(tmp_path):
    space = "space={train: {batch_size: {type: grid, values: [64, 128]}}}"
    cfg = load_config(EXPERIMENTS / "mnist_cnn.yaml", ["tune.search=grid", "tune.scheduler=fifo", space])
    with pytest.raises(ConfigError, match="a grid sweep has run every point of its grid"):
        grow.check_growth(cfg, str(tmp_path), 5)
