"""docs/writing-an-experiment.md's snippets do what the page says (issue #20): the estimator folds it spells out are
the sweep's folds, and preprocessing kept inside the model travels with the logged model."""

from __future__ import annotations

import re

import cloudpickle
import numpy as np
import pytest
import torch

from raytune_suite.config import CvSettings
from raytune_suite.train.estimators import cv_splitter
from tests.conftest import REPO

DOC = REPO / "docs" / "writing-an-experiment.md"
# A snippet: `<!-- snippet: NAME -->` on the line above a fenced code block.
SNIPPET = re.compile(r"<!-- snippet: (.+?) -->\n```\w*\n(.*?)```", re.DOTALL)


def snippet(name: str, namespace: dict | None = None) -> dict:
    """The named snippet run in `namespace` (a fresh one by default); returns what it defined."""
    blocks = dict(SNIPPET.findall(DOC.read_text(encoding="utf-8")))
    assert name in blocks, f"no snippet {name!r} in {DOC.name}: {sorted(blocks)}"
    namespace = dict(namespace or {})
    exec(compile(blocks[name], f"{DOC.name}:{name}", "exec"), namespace)  # our own docs
    return namespace


def splits(splitter, x, y) -> list[list[int]]:
    return [test.tolist() for _, test in splitter.split(x, y)]


@pytest.mark.parametrize(
    ("estimator", "target"), [("LogisticRegression", "binary"), ("LogisticRegression", "multiclass"),
                              ("Ridge", "continuous"), ("Ridge", "binary")],
)  # fmt: skip
@pytest.mark.parametrize(("shuffle", "seed"), [(True, None), (True, 7), (False, None)])
def test_the_documented_folds_are_the_sweeps_folds(estimator, target, shuffle, seed):
    import sklearn.linear_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = {"binary": rng.integers(0, 2, 60), "multiclass": rng.integers(0, 3, 60), "continuous": rng.normal(size=60)}
    model = getattr(sklearn.linear_model, estimator)()
    split_seed = 3  # tune.split_seed: cv.seed's default
    cv = CvSettings(folds=4, shuffle=shuffle, seed=seed)
    documented = snippet("the estimator's folds")["sweep_folds"](
        model, y[target], folds=4, shuffle=shuffle, seed=split_seed if seed is None else seed
    )
    assert type(documented) is type(cv_splitter(cv, model, y[target], split_seed))
    assert splits(documented, x, y[target]) == splits(cv_splitter(cv, model, y[target], split_seed), x, y[target])


def test_the_documented_preprocessing_travels_with_the_logged_model():
    """The wine example with its standardisation moved into the model: the pickled model (MLflow's pickle format)
    predicts from raw rows what the example's model predicts from standardised ones."""
    import runpy

    example = runpy.run_path(str(REPO / "docs" / "examples" / "wine_mlp.py"))
    defined = snippet("preprocessing inside the model", example)
    cfg_data, cfg_model = example["DataConfig"](), example["ModelConfig"]()
    data = defined["load_data"](cfg_data, 0)
    torch.manual_seed(0)
    model = defined["build_model"](cfg_model, data.info).eval()
    assert {"0.mean", "0.std"} <= set(model.state_dict())  # saved and loaded with the weights

    logged = cloudpickle.loads(cloudpickle.dumps(model))
    raw = data.val_x  # load_data now returns raw measurements
    mean, std = torch.tensor(data.info["mean"]), torch.tensor(data.info["std"])
    with torch.no_grad():
        assert torch.allclose(logged(raw), model[1:]((raw - mean) / std), atol=1e-6)
        assert not torch.allclose(model[1:](raw), model(raw))  # the gap the page warns of
