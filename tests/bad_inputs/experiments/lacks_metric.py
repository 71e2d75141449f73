"""An experiment module without METRIC (every other name of the protocol is there)."""

from pydantic import BaseModel

MODE, TASK = "max", "classification"


class DataConfig(BaseModel):
    pass


class ModelConfig(BaseModel):
    pass


def load_data(cfg, seed):
    raise NotImplementedError


def build_model(cfg, info):
    raise NotImplementedError
