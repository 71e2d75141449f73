"""Sentiment of Rotten Tomatoes review snippets by logistic regression on word counts: an estimator experiment.

The same reviews, training split (`tune.split_seed`, `data.val_size`), tokenizer and word-count features as
rt_transformer and its bag-of-words baseline (`python benchmarks/nlp_baseline.py`); the 20 % validation split stays
unseen. Each trial scores one config by k-fold cross-validation over the training split, as GridSearchCV does (the
YAML's `cv:` section). The estimator is a pipeline, so the vocabulary is learned inside each fold from its training
part only (the held-out fold's words count nowhere).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from experiments.rt_transformer import split_reviews, word_counts

# Solvers that can fit an L1 penalty; the others fit L2 only.
L1_SOLVERS = ("liblinear", "saga")


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: Literal["snippets", "full"] = Field("snippets", description="snippets (4,866 reviews) or full (12.8k)")
    path: str | None = Field(None, description="CSV with category (fresh/rotten) and text columns")
    val_size: float = Field(
        0.2, gt=0, lt=1, description="fraction held out, unseen (rt_transformer's validation split)"
    )
    subset: int | None = Field(None, ge=20, description="use only the first N reviews (smoke tests)")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    C: float = Field(1.0, gt=0, description="inverse regularisation strength")
    penalty: Literal["l1", "l2"] = Field("l2", description="l1 (sparse weights) or l2")
    solver: Literal["liblinear", "saga", "lbfgs", "newton-cg", "newton-cholesky", "sag"] = Field(
        "liblinear", description="liblinear and saga fit both penalties; the others l2 only"
    )
    max_iter: int = Field(1000, ge=1, description="solver iterations")
    min_df: int = Field(2, ge=1, description="training reviews a word must occur in to become a feature")
    random_state: int = Field(0, description="seeds liblinear's and saga's shuffling: the same fit every time")

    @model_validator(mode="after")
    def _solver_fits_the_penalty(self) -> ModelConfig:
        if self.penalty == "l1" and self.solver not in L1_SOLVERS:
            raise ValueError(f"solver {self.solver} fits only l2; use {' or '.join(L1_SOLVERS)} for l1")
        return self


def load_data(cfg: DataConfig, seed: int) -> tuple[list[str], np.ndarray]:
    """The training split's texts and labels (0 rotten, 1 fresh); cross-validation folds are cut from them."""
    texts, labels, train, _ = split_reviews(cfg, seed)
    return [texts[i] for i in train], labels[train]


def build_estimator(cfg: ModelConfig):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    classifier = LogisticRegression(
        C=cfg.C, solver=cfg.solver, max_iter=cfg.max_iter, random_state=cfg.random_state, **penalty(cfg.penalty)
    )
    return make_pipeline(word_counts(cfg.min_df), classifier)


def penalty(name: str) -> dict[str, object]:
    """scikit-learn 1.8 deprecated `penalty` for `l1_ratio` (1: L1, 0: L2); older versions read only `penalty`."""
    import sklearn

    if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 8):
        return {"l1_ratio": 1.0 if name == "l1" else 0.0}
    return {"penalty": name}
