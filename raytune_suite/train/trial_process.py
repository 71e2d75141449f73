"""What every trial process shares, whatever it trains (a torch model or a scikit-learn estimator): the resources
Ray granted the trial, the data cache that later trials in the same process (actor reuse) skip loading with, and
the line between a failure of the experiment's own code and anything else.

It imports no torch, so that an estimator experiment's trials never pay for it (`import torch` is 1.6 s here, and
both trial processes of a 2-CPU sweep pay it at once before their first trial); `trainable.py` builds the torch
trial on top of it.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Any

from raytune_suite.experiments import Experiment, load_experiment


def granted_resources() -> dict[str, float]:
    """What Ray granted this trial ({"CPU": 1.0, ...}); every CPU of the machine outside a Tune session."""
    from ray import tune

    try:
        return dict(tune.get_context().get_trial_resources().required_resources)
    except Exception:  # outside a Tune session (direct calls in tests)
        return {"CPU": float(os.cpu_count() or 1)}


@lru_cache(maxsize=2)
def cached_data(ref: str, data_json: str, seed: int) -> Any:
    """`load_data`'s result, loaded once per worker process; with actor reuse, later trials in the process skip
    loading."""
    experiment = load_experiment(ref)
    return experiment.load_data(experiment.DataConfig.model_validate_json(data_json), seed)


class experiment_code:
    """Marks a trial's failure in the experiment's own code (data, model, a training step) as a `UserCodeError`,
    which the sweep does not retry. CUDA running out of memory is left as it is: another try may fit."""

    def __init__(self, experiment: Experiment):
        self.experiment = experiment

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception) or out_of_gpu_memory(exc):
            return False
        from raytune_suite.check.frames import user_frame
        from raytune_suite.errors import UserCodeError

        message = " ".join(str(exc).split())
        raise UserCodeError(type(exc).__name__, message, user_frame(self.experiment, tb)) from exc


def out_of_gpu_memory(exc: BaseException) -> bool:
    """torch's CUDA out-of-memory error (only a process that imported torch can raise it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)
