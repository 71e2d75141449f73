"""The function every single-process trial runs, as Ray Tune sees it.

It lives apart from `trainable.py` so that the driver can hand it to Tune without importing torch (~1.2 s before
Ray could start); the trial's own process imports `trainable` (and torch) on its first call, as it did before.
"""

from __future__ import annotations

from typing import Any


def train_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: `raytune_suite.trainable.train_trial`, imported in the trial's process."""
    from raytune_suite.trainable import train_trial as train

    train(config)
