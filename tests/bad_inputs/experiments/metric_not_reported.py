"""An experiment module whose METRIC is not one its TASK reports (val_rmse is a regression metric)."""

from pydantic import BaseModel

METRIC, MODE, TASK = "val_rmse", "min", "classification"


class DataConfig(BaseModel):
    pass


class ModelConfig(BaseModel):
    pass


def load_data(cfg, seed):
    raise NotImplementedError


def build_model(cfg, info):
    raise NotImplementedError
