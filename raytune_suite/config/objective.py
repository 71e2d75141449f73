"""`Objective(metric, mode)`: the one place that says which of two metric values is better.

Every "better than" in the suite (best trial, best-so-far on the console, the report's ranking) asks this type,
so a non-finite value (a diverged trial's NaN or inf, or the finite stand-in a trainable reports to keep a
searcher working) is treated the same everywhere: it is never the best.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

# What a diverged trial reports for the objective instead of NaN/inf (the worst finite value for its mode): the
# searcher and the scheduler keep working, and `usable` never lets it win.
WORST = 1e30


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def usable(value: Any) -> bool:
    """A value that can win: a finite number."""
    return is_number(value) and math.isfinite(value)


@dataclass(frozen=True)
class Objective:
    """The sweep's objective.

    Args:
        metric: the reported metric that is optimised, e.g. `val_accuracy`.
        mode: `max` or `min`.
    """

    metric: str
    mode: Literal["min", "max"]

    def better(self, value: Any, than: float | None) -> bool:
        """True if `value` is usable and beats `than` (None: nothing yet)."""
        if not usable(value):
            return False
        return than is None or (value > than if self.mode == "max" else value < than)

    def best(self, values: Iterable[Any]) -> float | None:
        """The best usable value, None if there is none."""
        found: float | None = None
        for value in values:
            if self.better(value, found):
                found = float(value)
        return found

    def best_item(self, items: Iterable[tuple[Any, Any]]) -> tuple[Any, Any] | None:
        """The (key, value) pair with the best usable value, None if there is none; the first wins a tie."""
        found = None
        for key, value in items:
            if self.better(value, None if found is None else found[1]):
                found = (key, value)
        return found

    @property
    def sign(self) -> float:
        """+1 where higher is better, -1 where lower is: `sign * value` is higher-is-better."""
        return 1.0 if self.mode == "max" else -1.0

    @property
    def worst(self) -> float:
        """The finite stand-in a diverged trial reports (`WORST`, on the losing side for this mode)."""
        return -self.sign * WORST

    @property
    def ascending(self) -> bool:
        """Sort order that puts the best first."""
        return self.mode == "min"
