"""An experiment module whose METRIC is not one its TASK reports (val_rmse is a regression metric)."""

from experiments.mnist_cnn import DataConfig, ModelConfig, build_model, load_data  # noqa: F401

METRIC, MODE, TASK = "val_rmse", "min", "classification"
