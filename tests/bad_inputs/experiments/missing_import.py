"""An experiment module whose import fails: it needs a package that is not installed."""

import raytune_suite_no_such_package  # noqa: F401  (the corpus expects this line named)
from pydantic import BaseModel

METRIC, MODE, TASK = "val_accuracy", "max", "classification"


class DataConfig(BaseModel):
    pass


class ModelConfig(BaseModel):
    pass
