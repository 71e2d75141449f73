"""benchmarks/sweep_overhead.py's split of `fit()` into start-up, time within trials, gaps between them and tail."""

import importlib.util
import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("sweep_overhead", REPO / "benchmarks" / "sweep_overhead.py")
overhead = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = overhead
_spec.loader.exec_module(overhead)


def test_fit_splits_into_startup_trials_gaps_between_them_and_tail(tmp_path):
    # Two workers, 1 s trials (5 x 0.2 s): worker 1 runs two trials with a 0.1 s gap, worker 2 one; fit() 100..103.
    spans = [[1, 101.0, 102.1], [1, 102.2, 103.3], [2, 101.5, 102.5]]
    (tmp_path / "timeline.jsonl").write_text("".join(json.dumps(s) + "\n" for s in spans))
    split = overhead.timeline(tmp_path, 100.0, 103.5, Namespace(epochs=5, epoch_s=0.2))
    assert split["startup"] == pytest.approx(1.0)  # fit() started at 100, the first trial's code at 101
    assert split["extra"] == pytest.approx((0.1 + 0.1 + 0.0) / 3)  # beyond each trial's 1 s of sleeps
    assert split["gap"] == pytest.approx(0.1)  # only between trials on the same worker
    assert split["tail"] == pytest.approx(0.2)
    assert split["workers"] == 2
