"""Regularisers added to the loss (decoupled weight decay and dropout live in the optimizer and the model)."""

from __future__ import annotations

import torch
from torch import nn


def l2_penalty(model: nn.Module, lam: float, m: int) -> torch.Tensor | float:
    """(λ / 2m) · Σθ² over the model's weights, as the tuning guide writes the regularised loss.

    `m` is the number of examples the data term averages over (the batch size), so that λ means the same
    whatever the batch size. Biases (1-D parameters) are left out, as θ₀ is in the guide's formula.
    """
    weights = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    if lam == 0.0 or not weights:
        return 0.0
    return lam / (2 * m) * sum(w.pow(2).sum() for w in weights)
