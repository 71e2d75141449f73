"""The protocol's statistics: interquartile mean, its bootstrap interval, and speed-ups between strategies.

As Syne Tune and Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice") report them: over the
seeds of one problem and strategy, the interquartile mean (the mean of the middle 50 %, robust to a lucky or an
unlucky seed) with a percentile bootstrap 95 % interval. Normalised regret (0 = the problem's best, 1 = its median
configuration) lives on `Problem.regret`.

Time to target is censored: a seed that never reached the target within the budget counts as the budget (so an
IQM of a strategy that often misses is a lower bound on its true cost, and a speed-up over it an upper bound on
what is claimed for the other; the reached counts are reported beside every figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BOOTSTRAP = 2000  # resamples of the seeds
CONFIDENCE = 0.95


def iqm(values: Sequence[float]) -> float:
    """Mean of the middle half: a quarter of the sorted values cut from each end (`scipy.stats.trim_mean`, as
    rliable computes it)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), 0.25)) if len(values) else math.nan


def iqm_rows(samples: np.ndarray) -> np.ndarray:
    """The IQM of each row of a 2-D array (vectorised `iqm`)."""
    from scipy.stats import trim_mean

    return trim_mean(samples, 0.25, axis=1)


def resample(values: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """`BOOTSTRAP` resamples (rows) of `values`, drawn with replacement."""
    x = np.asarray(values, dtype=float)
    return x[rng.integers(0, len(x), (BOOTSTRAP, len(x)))]


def interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2
    return float(np.quantile(samples, tail)), float(np.quantile(samples, 1 - tail))


def bootstrap_iqm(values: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap 95 % interval of the IQM over `values` (seeds resampled with replacement)."""
    return interval(iqm_rows(resample(values, np.random.default_rng(seed))))


def speedup(baseline: Sequence[float], other: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """How many times sooner `other` gets there than `baseline`: IQM(baseline) / IQM(other), with a bootstrap
    95 % interval (the two strategies' seeds resampled independently: their runs share nothing)."""
    rng = np.random.default_rng(seed)
    ratios = iqm_rows(resample(baseline, rng)) / iqm_rows(resample(other, rng))
    return iqm(baseline) / iqm(other), *interval(ratios)
