"""An estimator experiment whose build_estimator returns no estimator: the smoke check says so in one line."""

from experiments.rt_logreg import DataConfig, ModelConfig, load_data  # noqa: F401


def build_estimator(cfg):
    return {"C": cfg.C}  # the bug: the settings, not the estimator built from them
