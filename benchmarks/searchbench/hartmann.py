"""The multi-fidelity Hartmann 3 and 6 functions, written from their published formulas.

As `mf-prior-bench` (automl/mf-prior-bench, `mfpbench.synthetic.hartmann`) defines them, after Kandasamy et al.
(2017, arXiv 1703.06240): at fidelity z in [1, z_max], with s = log(z) / log(z_max),

    H(x, z) = -sum_i (alpha_i - bias * (1 - s)) * exp(-sum_j A_ij (x_j - P_ij)^2) + |N(0, 1)| * noise * (1 - s)

so a lower fidelity is flatter (bias) and noisier, and z = z_max is the true Hartmann function, minimised.
mf-prior-bench pins numpy < 2, so it is not installed; its bias/noise presets are copied below. The noise draw is
seeded by the configuration and the fidelity, so a configuration replays the same curve every time.
"""

from __future__ import annotations

import zlib

import numpy as np

ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
A3 = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
P3 = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
A6 = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
P6 = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
# The global minima of the true (z = z_max) functions (Surjanovic & Bingham's library of test functions).
MINIMUM = {3: -3.86278, 6: -3.32237}
# mf-prior-bench's presets: (bias, noise).
PRESETS = {"good": (2.5, 2.0), "moderate": (3.0, 3.0), "bad": (3.5, 4.0), "terrible": (4.0, 5.0)}
Z_MAX = 100  # mf-prior-bench's top fidelity


def hartmann(x: np.ndarray, z: np.ndarray, bias: float, noise: float) -> np.ndarray:
    """H at the points `x` (n × d, in [0, 1]^d) and fidelities `z` (n,), as in the module docstring."""
    x, z = np.atleast_2d(np.asarray(x, dtype=float)), np.asarray(z, dtype=float).reshape(-1)
    a, p = (A3, P3) if x.shape[1] == 3 else (A6, P6)
    s = np.log(z) / np.log(Z_MAX)
    alpha = ALPHA[None, :] - bias * (1 - s)[:, None]
    inner = np.sum(a[None, :, :] * (x[:, None, :] - p[None, :, :]) ** 2, axis=-1)
    value = -np.sum(alpha * np.exp(-inner), axis=-1)
    return value + np.abs(standard_normal(x, z)) * noise * (1 - s)


def standard_normal(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """One N(0, 1) draw per (point, fidelity), the same on every call and every machine."""
    out = np.empty(len(x))
    for i, (row, fidelity) in enumerate(zip(x, np.broadcast_to(z, (len(x),)), strict=True)):
        seed = zlib.crc32(np.append(row, fidelity).astype(np.float64).tobytes())
        out[i] = np.random.default_rng(seed).standard_normal()
    return out
