"""Live progress on the console: one line per trial event, with the sweep's best so far.

Ray's own status table is switched off (verbose=0) because on a long sweep it repeats the whole table; these lines
say what changed and stay readable in a CI log or a `ray job logs` stream.
"""

from __future__ import annotations

import sys
import time

from ray import tune

from raytune_suite.objective import Objective, is_number

HEARTBEAT_S = 30.0


class ProgressPrinter(tune.Callback):
    """Prints trial starts and ends as they happen, and a status line every `heartbeat_s` in between,
    so a sweep whose epochs take minutes still shows it is alive and where it stands."""

    def __init__(
        self, metric: str, mode: str, total: int, max_epochs: int, heartbeat_s: float = HEARTBEAT_S, step="epoch"
    ):
        self.objective = Objective(metric, mode)
        self.step = step  # what one result is: an epoch, or an estimator trial's cross-validation
        self.metric, self.total, self.max_epochs = metric, total, max_epochs
        self.heartbeat_s = heartbeat_s
        self.started = self.last_said = time.monotonic()
        self.done = 0
        self.best: float | None = None
        self.best_trial = ""

    def _say(self, text: str) -> None:
        self.last_said = time.monotonic()
        elapsed = self.last_said - self.started
        # sys.stdout is looked up per call: Tune pickles callbacks with the experiment state.
        print(f"[{elapsed:6.1f}s] {text}", file=sys.stdout, flush=True)

    def on_step_end(self, iteration, trials, **info) -> None:
        if time.monotonic() - self.last_said < self.heartbeat_s:
            return
        running = [t for t in trials if t.status == "RUNNING"]
        epochs = ", ".join(f"{t.trial_id}@{(t.last_result or {}).get('epoch', 0)}" for t in running)
        best = f"{self.best:.4f} ({self.best_trial})" if self.best is not None else "n/a"
        self._say(f"status {len(running)} running [{epochs}], {self.done}/{self.total} done, best {best}")

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._say(f"start  {trial.trial_id}  ({self.done}/{self.total} done)")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        value = result.get(self.metric)
        if not result.get("diverged") and self.objective.better(value, self.best):
            self.best, self.best_trial = float(value), trial.trial_id

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        result = trial.last_result or {}
        epochs = int(result.get("epoch", result.get("training_iteration", 0)))
        diverged = bool(result.get("diverged"))
        how = "diverged" if diverged else "finished" if epochs >= self.max_epochs else "stopped early"
        value = result.get(self.metric)
        shown = "diverged" if diverged else f"{value:.4f}" if is_number(value) else "n/a"
        best = f"{self.best:.4f} ({self.best_trial})" if self.best is not None else "n/a"
        self._say(
            f"{how:13s} {trial.trial_id} after {epochs} {self.step}(s): {self.metric}={shown}  "
            f"[{self.done}/{self.total} done, best {best}]"
        )

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        self._say(f"FAILED {trial.trial_id}: see error.txt in {trial.path}")
