"""Which checkpoints a sweep keeps: what a published model, a retried trial and a PBT recipient restore from."""

from raytune_suite.config import load_config
from raytune_suite.run.tuner import checkpoint_config


def test_a_sweep_keeps_its_two_best_checkpoints_by_the_objective(mnist_yaml):
    cfg = load_config(mnist_yaml, ["tune.scheduler=asha"])
    kept = checkpoint_config(cfg)
    assert kept.num_to_keep == 2
    assert (kept.checkpoint_score_attribute, kept.checkpoint_score_order) == (cfg.tune.metric, cfg.tune.mode)


def test_a_pbt_sweep_keeps_every_checkpoint_so_a_donor_s_earlier_one_can_still_be_restored(mnist_yaml):
    cfg = load_config(mnist_yaml, ["tune.scheduler=pbt", "tune.search=random"])
    assert checkpoint_config(cfg).num_to_keep is None
