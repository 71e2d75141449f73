"""Replay a sweep in simulated time: N workers, a problem's curves, and a strategy's own decisions.

Every decision is made by the objects a real sweep uses (`strategies.py`): the suite's searchers and schedulers,
Ray Tune's `SearchGenerator`/`BasicVariantGenerator` and `TrialScheduler`s, called through their public methods
in the order Tune's `TuneController` calls them:

- a worker that frees up runs the trial the scheduler's `choose_trial_to_run` picks, else a new trial from
  `search_alg.next_trial()` (the searcher's `suggest`, limited to N live trials as in a real sweep), which the
  scheduler is told of with `on_trial_add`;
- each epoch's result goes to `scheduler.on_trial_result`; on CONTINUE the searcher's `on_trial_result` follows,
  on STOP both are told `on_trial_complete` with that result, on PAUSE the worker is freed;
- after its last epoch a trial ends as a function trainable that returns does: `on_trial_complete` with its last
  result; a diverged trial (a non-finite metric) reports the finite stand-in `objective.WORST` and ends, as the
  suite's trainable does.

What replaying costs here is not counted: an epoch takes the seconds its table recorded (synthetic problems: 1 s),
and a sweep's cost is its trial-epochs and its simulated wall time. `replay.py` runs the same problems through a
real `Tuner` to show the decisions are the same.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from benchmarks.searchbench.problems import Problem
from raytune_suite.config.objective import Objective

CONTINUE, PAUSE, STOP = "CONTINUE", "PAUSE", "STOP"  # ray.tune.schedulers.TrialScheduler's decisions


@dataclass(eq=False)
class SimTrial:
    """A trial being replayed: its resolved config, its curve, how far it has trained."""

    handle: Any  # the policy's own trial object (a Ray `Trial`, an Optuna `Trial`)
    sections: dict[str, dict[str, Any]]
    curve: Any  # the metric after each epoch
    seconds: float  # per epoch
    trained: int = 0


class Policy(Protocol):
    """A strategy's decisions, as the simulator asks for them."""

    def next_trial(self) -> SimTrial | None: ...

    def on_result(self, trial: SimTrial, result: dict[str, Any]) -> str: ...

    def on_complete(self, trial: SimTrial, result: dict[str, Any]) -> None: ...


@dataclass
class Trace:
    """What a replayed sweep did: after every epoch, the trial-epochs spent, the simulated clock and the best value
    reported so far (None before any finite one)."""

    spent: list[int] = field(default_factory=list)
    clock: list[float] = field(default_factory=list)
    incumbent: list[float | None] = field(default_factory=list)
    started: list[SimTrial] = field(default_factory=list)  # every trial, in the order they started

    @property
    def trials(self) -> int:
        return len(self.started)

    def best_within(self, budget: float) -> float | None:
        """The best value reported within `budget` trial-epochs."""
        value = None
        for spent, best in zip(self.spent, self.incumbent, strict=True):
            if spent > budget:
                break
            value = best
        return value

    def first_reaching(self, target: float, sign: int) -> tuple[int, float] | None:
        """(trial-epochs, simulated seconds) when the best value first reached `target`; None if it never did."""
        for spent, clock, best in zip(self.spent, self.clock, self.incumbent, strict=True):
            if best is not None and sign * best >= sign * target:
                return spent, clock
        return None


def epoch_result(problem: Problem, trial: SimTrial, epoch: int) -> dict[str, Any]:
    """What the replay trainable reports after `epoch` (1-based)."""
    value = float(trial.curve[epoch - 1])
    result = {
        "epoch": epoch,
        "training_iteration": epoch,
        "time_total_s": epoch * trial.seconds,
        "done": False,
        problem.metric: value,
    }
    if not math.isfinite(value):
        result.update({problem.metric: Objective(problem.metric, problem.mode).worst, "diverged": 1.0})
    return result


def simulate(problem: Problem, policy: Policy, workers: int, budget: int) -> Trace:
    """Replay until `budget` trial-epochs are spent (or the strategy proposes nothing more)."""
    trace, clock, order = Trace(), 0.0, 0
    running: list[tuple[float, int, SimTrial]] = []  # (when its epoch ends, tie-break, trial)
    sign, best = problem.sign, None
    while True:
        while len(running) < workers and (trace.spent[-1] if trace.spent else 0) < budget:
            trial = policy.next_trial()
            if trial is None:
                break
            if trial.trained == 0:
                trace.started.append(trial)
            order += 1
            heapq.heappush(running, (clock + trial.seconds, order, trial))
        if not running or (trace.spent and trace.spent[-1] >= budget):
            return trace
        clock, _, trial = heapq.heappop(running)
        trial.trained += 1
        result = epoch_result(problem, trial, trial.trained)
        value = float(trial.curve[trial.trained - 1])
        if math.isfinite(value) and (best is None or sign * value > sign * best):
            best = value
        trace.spent.append((trace.spent[-1] if trace.spent else 0) + 1)
        trace.clock.append(clock)
        trace.incumbent.append(best)
        decision = policy.on_result(trial, result)
        if decision == STOP:
            continue
        if decision == PAUSE:
            continue
        if trial.trained >= problem.epochs or result.get("diverged"):
            policy.on_complete(trial, {**result, "done": True})
            continue
        order += 1
        heapq.heappush(running, (clock + trial.seconds, order, trial))
