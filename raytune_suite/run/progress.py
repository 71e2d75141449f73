"""Live progress on the console: one line per trial event, or, for a sweep of many trials, periodic summaries.

Ray's own status table is switched off (verbose=0) because on a long sweep it repeats the whole table; these lines
say what changed and stay readable in a CI log or a `ray job logs` stream. A sweep of more than `PER_TRIAL_UP_TO`
trials would print two lines per trial (2,000 for 1,000 trials), so it prints instead one summary line every
`summary_s` seconds ("N running, M/T done, ..., best ..."), a line when a trial that improved the best value ends
(a few dozen at most: random search improves on ~ln(trials) of them), its first failures, and a final summary.
"""

from __future__ import annotations

import sys
import time

from ray import tune

from raytune_suite.config.objective import Objective, is_number

HEARTBEAT_S = 30.0
# Above this many trials a sweep prints summaries instead of a line per trial start and end.
PER_TRIAL_UP_TO = 50
# Seconds between summary lines of a many-trial sweep: ~6 lines a minute whatever the trials' pace.
SUMMARY_S = 10.0
# Failures each get their own line up to this many; later ones are counted in the summaries.
FAILURE_LINES = 5
# A status line names at most this many running trials, then "+N more".
RUNNING_SHOWN = 8


class ProgressPrinter(tune.Callback):
    """Prints trial starts and ends as they happen, and a status line every `heartbeat_s` in between,
    so a sweep whose epochs take minutes still shows it is alive and where it stands.

    Args:
        metric / mode: the sweep's objective.
        total: trials the sweep runs; above `per_trial_up_to` it prints summaries instead of a line per trial.
        max_epochs: epochs a trial trains unless the scheduler stops it.
        heartbeat_s: the longest silence; a status line is printed when nothing else was for this long.
        summary_s: seconds between summary lines of a many-trial sweep (when something changed).
        step: what one result is: an epoch, or an estimator trial's cross-validation.
        earlier: a resumed sweep's trials as its earlier sessions left them, trial id -> (best value, its epoch):
            the best shown, and each resumed trial's own best, start from them (MLflow holds the same numbers).
    """

    def __init__(
        self,
        objective: Objective,
        total: int,
        max_epochs: int,
        heartbeat_s: float = HEARTBEAT_S,
        summary_s: float = SUMMARY_S,
        per_trial_up_to: int = PER_TRIAL_UP_TO,
        step: str = "epoch",
        earlier: dict[str, tuple[float, int]] | None = None,
    ):
        self.objective = objective
        self.step = step  # what one result is: an epoch, or an estimator trial's cross-validation
        self.metric, self.total, self.max_epochs = objective.metric, total, max_epochs
        self.heartbeat_s, self.summary_s = heartbeat_s, summary_s
        self.summarise = total > per_trial_up_to
        self.started = self.last_said = time.monotonic()
        self.done = self.failed = self.early = 0
        self.changed = False  # a trial started or ended since the last summary
        self.bests: dict[str, float] = {}  # each trial's best value; a trial that diverged is dropped for good
        self.best_epochs: dict[str, int] = {}  # the epoch of each trial's best value (its first, on a tie)
        self.diverged: set[str] = set()
        self.announced: float | None = None  # the best value a "new best" line last showed
        for tid, (value, epoch) in (earlier or {}).items():
            self.bests[tid], self.best_epochs[tid] = float(value), int(epoch)
        self.best_trial: str = ""
        self.best: float | None = None
        self._rank()
        self.counted = False  # trials a restored sweep had ended before this session: counted at its first step

    def _rank(self) -> None:
        """The best trial of those still in the running (`bests`)."""
        found = self.objective.best_item(self.bests.items())
        self.best_trial, self.best = (found[0], found[1]) if found else ("", None)

    def _say(self, text: str) -> None:
        self.last_said = time.monotonic()
        elapsed = self.last_said - self.started
        # sys.stdout is looked up per call: Tune pickles callbacks with the experiment state.
        print(f"[{elapsed:6.1f}s] {text}", file=sys.stdout, flush=True)

    def _best(self) -> str:
        return f"{self.best:.4f} ({self.best_trial})" if self.best is not None else "n/a"

    def status(self, trials: list) -> str:
        """`N running [id@epoch, ...], M/T done, best ...`; a many-trial sweep's also counts failed and stopped
        trials. Only trials Tune still holds as running are listed, at most RUNNING_SHOWN of them."""
        running = [t for t in trials if t.status == "RUNNING"]
        shown = [f"{t.trial_id}@{(t.last_result or {}).get('epoch', 0)}" for t in running[:RUNNING_SHOWN]]
        if len(running) > RUNNING_SHOWN:
            shown.append(f"+{len(running) - RUNNING_SHOWN} more")
        counts = f" ({self.failed} failed, {self.early} stopped early)" if self.summarise else ""
        return (
            f"{len(running)} running [{', '.join(shown)}], {self.done}/{self.total} done{counts}, best {self._best()}"
        )

    def on_step_begin(self, iteration, trials, **info) -> None:
        """At a sweep's first step: the trials a restored sweep had already ended count as done (Tune does not
        complete them again), so a resume counts on from them and ends at the total the summary shows."""
        if self.counted:
            return
        self.counted = True
        for trial in trials:
            if trial.status == "ERROR":
                self.done, self.failed = self.done + 1, self.failed + 1
            elif trial.status == "TERMINATED":
                result = trial.last_result or {}
                self.done += 1
                self.early += int(result.get("epoch", result.get("training_iteration", 0))) < self.max_epochs

    def on_step_end(self, iteration, trials, **info) -> None:
        quiet_s = time.monotonic() - self.last_said
        if quiet_s >= self.heartbeat_s or (self.summarise and self.changed and quiet_s >= self.summary_s):
            self.changed = False
            self._say(f"status {self.status(trials)}")

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.changed = True
        if not self.summarise:
            self._say(f"start  {trial.trial_id}  ({self.done}/{self.total} done)")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        """Track the best value; a trial that diverges never shows as best, not even with its earlier finite
        values (as the tracker and the summary leave it out)."""
        tid, value = trial.trial_id, result.get(self.metric)
        if result.get("diverged"):
            self.diverged.add(tid)
            if self.bests.pop(tid, None) is not None and tid == self.best_trial:
                self._rank()
            return
        if tid in self.diverged or not self.objective.better(value, self.bests.get(tid)):
            return
        self.bests[tid] = float(value)
        self.best_epochs[tid] = int(result.get("epoch", result.get("training_iteration", 0)))
        if self.objective.better(value, self.best):
            self.best, self.best_trial = float(value), tid

    def _announce_best(self) -> None:
        """A many-trial sweep's line for a better best, once the trial that set it ended (not at every epoch)."""
        if self.best is not None and self.best != self.announced:
            self.announced = self.best
            self._say(f"new best {self.metric}={self.best:.4f} ({self.best_trial}) [{self.done}/{self.total} done]")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        self.changed = True
        result = trial.last_result or {}
        epochs = int(result.get("epoch", result.get("training_iteration", 0)))
        diverged = bool(result.get("diverged"))
        how = "diverged" if diverged else "finished" if epochs >= self.max_epochs else "stopped early"
        self.early += how != "finished"
        if self.summarise:
            self._announce_best()
            return
        self._say(
            f"{how:13s} {trial.trial_id} after {epochs} {self.step}(s): {self._outcome(trial.trial_id, result)}  "
            f"[{self.done}/{self.total} done, best {self._best()}]"
        )

    def _outcome(self, tid: str, result: dict) -> str:
        """A trial's one number: its best value and the epoch of it, as the summary, MLflow's `best_<metric>` tag
        and the report's `best_<metric>`/`best_epoch` columns count it; the last epoch's value, when it differs, is
        labelled `final` (the report's `final_<metric>`). A diverged trial has none."""
        final = result.get(self.metric)
        if result.get("diverged") or tid in self.diverged:
            return f"{self.metric}=diverged"
        best, epoch = self.bests.get(tid), self.best_epochs.get(tid)
        if best is None or epoch is None:
            return f"{self.metric}={final:.4f}" if is_number(final) else f"{self.metric}=n/a"
        if self.step != "epoch":  # one result per trial (a cross-validation): best and final are one number
            return f"{self.metric}={best:.4f}"
        last = int(result.get("epoch", result.get("training_iteration", 0)))
        shown = f"best {self.metric}={best:.4f} at epoch {epoch}"
        return shown if epoch == last or not is_number(final) or final == best else f"{shown} (final {final:.4f})"

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.done += 1
        self.failed += 1
        self.changed = True
        if self.summarise:
            self._announce_best()
        if not self.summarise or self.failed <= FAILURE_LINES:
            self._say(f"FAILED {trial.trial_id}: see error.txt in {trial.path}")
        elif self.failed == FAILURE_LINES + 1:
            self._say("more trials failed: counted in the status lines from now on (error.txt in each trial folder)")

    def on_experiment_end(self, trials, **info) -> None:
        if self.summarise:
            self._say(f"status {self.status(trials)}")
