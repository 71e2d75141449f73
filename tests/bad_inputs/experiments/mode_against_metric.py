"""An experiment module whose MODE maximises a loss."""

from experiments.mnist_cnn import DataConfig, ModelConfig, build_model, load_data  # noqa: F401

METRIC, MODE, TASK = "val_loss", "max", "classification"
