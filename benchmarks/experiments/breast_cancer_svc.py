"""An SVC on scikit-learn's breast-cancer data (569 tumours, 30 features): the small estimator sweep that
`benchmarks/small_sweep.py` times through the suite, cold and against a running Ray, beside GridSearchCV."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    C: float = Field(1.0, gt=0, description="inverse regularisation strength")
    kernel: Literal["linear", "rbf", "poly"] = Field("rbf", description="the SVC's kernel")


def load_data(cfg: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


def build_estimator(cfg: ModelConfig):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=cfg.C, kernel=cfg.kernel))  # scaled inside each fold
