"""Helpers experiments share for offline data: locating files that wheels ship, and reproducible splits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from raytune_suite.errors import ConfigError


def package_file(package: str, relative: str, install: str) -> Path:
    """A data file inside an installed package, found without importing the package.

    Some data wheels pin old dependencies (they are installed with --no-deps), so importing them could fail
    or be slow; their files are all we need.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigError(f"data: package {package!r} is not installed; run: {install}")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise ConfigError(f"data: {path} is missing from package {package!r}; reinstall it: {install}")
    return path


def split_indices(
    labels: np.ndarray, val_size: float | int, seed: int, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices; stratified by label for classification so small splits keep class balance."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, val = train_test_split(idx, test_size=val_size, random_state=seed, stratify=labels if stratify else None)
    return np.sort(train), np.sort(val)
