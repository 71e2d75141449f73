"""An experiment module whose TASK is not one of raytune_suite.experiments.TASKS."""

from pydantic import BaseModel

METRIC, MODE, TASK = "val_ndcg", "max", "ranking"


class DataConfig(BaseModel):
    pass


class ModelConfig(BaseModel):
    pass


def load_data(cfg, seed):
    raise NotImplementedError


def build_model(cfg, info):
    raise NotImplementedError
