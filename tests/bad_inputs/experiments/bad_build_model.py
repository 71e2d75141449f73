"""An experiment whose build_model has a bug every config hits: the smoke check names its file and line."""

from experiments.mnist_cnn import METRIC, MODE, TASK, DataConfig, ModelConfig, load_data  # noqa: F401


def build_model(cfg, info):
    return info["classes_typo"]  # the bug: load_data fills info["classes"]
