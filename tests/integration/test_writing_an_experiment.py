"""docs/writing-an-experiment.md: its worked example is the files in docs/examples/, and they run a real sweep."""

import math
import re

import pytest

from raytune_suite.config import ignored_train_keys, load_config
from tests.conftest import REPO

DOC = REPO / "docs" / "writing-an-experiment.md"
EXAMPLE = REPO / "docs" / "examples" / "wine_mlp.yaml"
# A file's block: `<!-- docs/examples/NAME -->` on the line above a fenced code block.
BLOCK = re.compile(r"<!-- (docs/examples/\S+) -->\n```\w*\n(.*?)```", re.DOTALL)


def test_the_docs_code_blocks_are_the_example_files():
    blocks = dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))
    assert set(blocks) == {"docs/examples/wine_mlp.py", "docs/examples/wine_mlp.yaml"}
    for path, text in blocks.items():
        assert text == (REPO / path).read_text(encoding="utf-8"), f"{path} and its block in {DOC.name} differ"


def test_the_example_validates_without_warnings():
    cfg = load_config(EXAMPLE)
    assert cfg.experiment == str(EXAMPLE.with_suffix(".py"))
    assert ignored_train_keys(cfg) == []


@pytest.mark.integration
def test_the_example_runs_a_tiny_sweep(ray_local, store):
    from raytune_suite.run.sweep import run_sweep

    uri, client, storage = store
    cfg = load_config(EXAMPLE, ["tune.num_samples=2", "train.epochs=2", "tune.asha.grace_period=1"])
    result = run_sweep(cfg, tracking_uri=uri, storage=storage)
    assert result.trials == 2 and result.failed == 0
    assert math.isfinite(result.best_value) and 0 < result.best_value <= 1
    runs = client.search_runs([result.experiment_id])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
