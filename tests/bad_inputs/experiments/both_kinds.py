"""A module that is a torch experiment and an estimator experiment at once: which one it means is an error."""

from experiments.mnist_cnn import METRIC, MODE, TASK, DataConfig, ModelConfig, build_model, load_data  # noqa: F401


def build_estimator(cfg):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()
