"""An experiment module whose MODE maximises a loss."""

from pydantic import BaseModel

METRIC, MODE, TASK = "val_loss", "max", "classification"


class DataConfig(BaseModel):
    pass


class ModelConfig(BaseModel):
    pass


def load_data(cfg, seed):
    raise NotImplementedError


def build_model(cfg, info):
    raise NotImplementedError
