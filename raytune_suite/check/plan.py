"""The budget plan (`validate --plan`): what a sweep will cost, worked out before anything starts.

`budget` counts the trials (`tuner.total_trials`) and what each may train: epochs for a torch experiment, one
`cv.folds`-fold cross-validation for an estimator experiment. Under ASHA it also lists the rungs where trials can
be stopped, read from the scheduler `schedulers.asha` builds (Ray's own `_Bracket`), and the trials expected to
reach each: all of them reach the first rung, then 1/reduction_factor of them pass each rung. That idealises ASHA
(the first trials at a rung always pass, so a real sweep stops somewhat fewer), which makes the expected figure a
lower bound of the work and the worst case (every trial runs every epoch) an upper one.

`calibrate` times one epoch of the config's defaults on this machine (the trainable's own `train_epoch` and
`evaluate`, on the real training split, with the threads a trial gets), or one cross-validation fit of an estimator,
and turns the expected work into a wall time: work × seconds / trials at once (`concurrency.plan_concurrency` for a
local Ray instance of `--num-cpus` CPUs). Asked for (`fixed=True`, which `validate --plan --calibrate` does), it
also measures the sweep's fixed costs here (fixed_costs.py: a small sweep of the experiment through the suite on a
private Ray instance, in a temporary folder) and adds them: start-up, `fit()` and publishing, as `run`'s last line
splits a real sweep's time. Without it nothing here starts Ray or MLflow or writes a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from raytune_suite.check.fixed_costs import FixedCosts, estimate
from raytune_suite.config import ExperimentConfig
from raytune_suite.run.concurrency import ClusterView, Concurrency, plan_concurrency
from raytune_suite.train.kinds import kind_of


@dataclass(frozen=True)
class Rung:
    """One ASHA rung where a trial can be stopped.

    Args:
        milestone: Ray's milestone in epochs (`training_iteration`), grace_period · reduction_factor^k.
        epoch: the epoch whose result Ray compares there (the first at or past the milestone).
        trials: trials expected to reach it (trials / reduction_factor^k).
    """

    milestone: float
    epoch: int
    trials: float


@dataclass(frozen=True)
class Plan:
    """What a sweep will cost, in trial-epochs (torch) or cross-validation fits (estimator).

    Args:
        trials: trials the sweep runs.
        scheduler: `tune.scheduler`.
        unit: `epoch` or `fit`: what `worst` and `expected` count.
        per_trial: epochs (max_t) or folds one trial runs at most.
        worst: every trial runs to the end.
        expected: what the scheduler is expected to let run (equal to `worst` unless ASHA stops trials).
        milestones: ASHA's milestones as Ray computes them, ascending (empty for other schedulers).
        rungs: the milestones where ASHA decides (one below max_t), with their trials.
        finishing: trials expected to run every epoch.
        note: how `expected` was reckoned, for the printout.
    """

    trials: int
    scheduler: str
    unit: str
    per_trial: int
    worst: float
    expected: float
    milestones: tuple[float, ...] = ()
    rungs: tuple[Rung, ...] = ()
    finishing: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Calibration:
    """One unit of work timed here, and the wall time it implies.

    Args:
        seconds: one epoch of the defaults (train and validate), or one cross-validation fit (fit and score).
        what: how it was measured, for the printout.
        concurrency: trials at once on a local Ray instance of this machine's (or --num-cpus) CPUs.
        parallel: units running at once: trials at once, times folds a trial fits in parallel.
        fixed: the sweep's fixed costs measured here (fixed_costs.py), when asked for.
    """

    seconds: float
    what: str
    concurrency: Concurrency
    parallel: int
    fixed: FixedCosts | None = None

    def wall_s(self, work: float) -> float:
        return work * self.seconds / self.parallel


# -- the budget ------------------------------------------------------------------------------------------------
def budget(cfg: ExperimentConfig) -> Plan:
    from raytune_suite.run.tuner import total_trials

    trials = total_trials(cfg)
    scheduler = cfg.tune.scheduler
    if kind_of(cfg).plan_unit == "fit":
        fits = trials * cfg.cv.folds
        return Plan(trials, scheduler, "fit", cfg.cv.folds, fits, fits)
    if scheduler == "asha":
        return asha_plan(cfg, trials)
    worst, expected, note = _epochs_without_stops(cfg, trials)
    return Plan(trials, scheduler, "epoch", cfg.train.epochs, worst, expected, note=note)


def _epochs_without_stops(cfg: ExperimentConfig, trials: int) -> tuple[float, float, str]:
    """FIFO and PBT run every trial to its end; under FIFO `space.train.epochs` may vary that end."""
    tuned = cfg.space.get("train", {}).get("epochs")
    if tuned is None:
        return trials * cfg.train.epochs, trials * cfg.train.epochs, ""
    values = tuned.candidates()  # a choice's values, or a range's two ends
    mean = sum(values) / len(values)
    return trials * max(values), trials * mean, f"space.train.epochs averages {mean:g}"


def asha_plan(cfg: ExperimentConfig, trials: int) -> Plan:
    """ASHA's rungs as the sweep's scheduler computes them, the trials reaching each, the expected trial-epochs."""
    from raytune_suite.search.schedulers import asha_rungs

    rf, max_t = cfg.tune.asha.reduction_factor, cfg.train.epochs
    milestones = tuple(asha_rungs(min(cfg.tune.asha.grace_period, max_t), rf, max_t))
    rungs = tuple(
        Rung(milestone, epoch, trials / rf**k) for k, (milestone, epoch) in enumerate(decisions(milestones, max_t))
    )
    finishing = trials / rf ** len(rungs)
    expected, before = 0.0, 0
    for rung in rungs:  # the trials reaching a rung ran the epochs since the previous one
        expected += rung.trials * (rung.epoch - before)
        before = rung.epoch
    expected += finishing * (max_t - before)
    note = f"1/{rf:g} of the trials pass each rung"
    return Plan(trials, "asha", "epoch", max_t, trials * max_t, expected, milestones, rungs, finishing, note)


def decisions(milestones: tuple[float, ...], max_t: int) -> list[tuple[float, int]]:
    """(milestone, epoch) where ASHA compares a trial, in order, by its bracket's rule (`_Bracket.on_result` in
    `ray.tune.schedulers.async_hyperband`): at each epoch the largest milestone reached and not yet recorded is
    recorded, at most one per result. So a fractional milestone is decided at the first epoch past it; and at max_t
    the scheduler stops a trial without asking its bracket, so a milestone at max_t decides nothing.
    (`tests/unit/test_plan.py` drives Ray's own bracket to check this rule.)"""
    recorded, out = set(), []
    for epoch in range(1, max_t):
        reached = [m for m in milestones if m <= epoch and m not in recorded]
        if reached:
            recorded.add(max(reached))
            out.append((max(reached), epoch))
    return out


# -- calibration -----------------------------------------------------------------------------------------------
def calibrate(
    cfg: ExperimentConfig, num_cpus: int | None = None, fixed: bool = False, checks_s: float = 0.0
) -> Calibration:
    """Time one unit of work here; concurrency as a local Ray instance of `num_cpus` (default: all) would run it.
    `fixed`: measure the fixed costs too (seconds, Ray started); `checks_s`: what the command's own imports and
    checks took (a `run` pays the same)."""
    kind = kind_of(cfg)
    seconds, what = kind.time_unit(cfg)
    concurrency = local_concurrency(cfg, num_cpus)
    parallel = concurrency.n * kind.parallel_units(cfg)
    costs = None
    if fixed:
        from raytune_suite.check.fixed_costs import measure

        costs = measure(cfg, num_cpus, checks_s, concurrency.n)
    return Calibration(seconds, what, concurrency, parallel, costs)


def local_concurrency(cfg: ExperimentConfig, num_cpus: int | None) -> Concurrency:
    import torch

    from raytune_suite.run.tuner import total_trials

    local = {"CPU": float(num_cpus or os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}
    return plan_concurrency(cfg, cluster=ClusterView(local), trials=total_trials(cfg))


# -- the printout ----------------------------------------------------------------------------------------------
def format_plan(plan: Plan, cfg: ExperimentConfig, calibration: Calibration | None = None) -> str:
    """The plan as `validate --plan` prints it."""
    if plan.unit == "fit":
        lines = [
            f"plan: {plan.trials} trial(s) × {plan.per_trial}-fold cross-validation = {_n(plan.worst)} fits "
            "(+1 refit of the best config on every example)"
        ]
    else:
        lines = [f"plan: {plan.trials} trial(s) × up to {plan.per_trial} epoch(s), scheduler {plan.scheduler}"]
        lines += _schedule_lines(plan, cfg)
    if calibration is not None:
        lines += _calibration_lines(plan, calibration)
    return "\n".join(lines) + "\n"


def _schedule_lines(plan: Plan, cfg: ExperimentConfig) -> list[str]:
    if plan.scheduler == "asha":
        asha = cfg.tune.asha
        lines = [
            f"  asha: grace_period {asha.grace_period}, reduction_factor {asha.reduction_factor:g}, "
            f"max_t {plan.per_trial} (train.epochs); Ray's milestones {', '.join(f'{m:g}' for m in plan.milestones)}"
        ]
        for k, rung in enumerate(plan.rungs, 1):
            at = (
                f"epoch {rung.epoch}"
                if rung.epoch == rung.milestone
                else f"milestone {rung.milestone:g}, epoch {rung.epoch}"
            )
            lines.append(f"  rung {k} ({at}): {_n(rung.trials)} trial(s) reach it")
        lines.append(f"  all {plan.per_trial} epochs: {_n(plan.finishing)} trial(s) expected to finish")
        steps = [(r.trials, r.epoch) for r in plan.rungs] + [(plan.finishing, plan.per_trial)]
        terms, before = [], 0
        for trials, epoch in steps:
            terms.append(f"{_n(trials)}×{epoch - before}")
            before = epoch
        lines.append(f"  worst case: {_n(plan.worst)} trial-epochs (every trial runs all {plan.per_trial} epochs)")
        lines.append(f"  expected:   {_n(plan.expected)} trial-epochs ({plan.note}: {' + '.join(terms)})")
        return lines
    if plan.scheduler == "pbt":
        why = "pbt stops no trial (the bottom quarter continue from a top trial's checkpoint)"
    else:
        why = f"{plan.scheduler} runs every trial to its end"
    if plan.worst == plan.expected:
        return [f"  {why}: {_n(plan.worst)} trial-epochs"]
    return [f"  {why}: worst case {_n(plan.worst)} trial-epochs, expected {_n(plan.expected)} ({plan.note})"]


def _calibration_lines(plan: Plan, c: Calibration) -> list[str]:
    unit = "fits" if plan.unit == "fit" else "trial-epochs"
    per = "fit" if plan.unit == "fit" else "epoch"
    expected, worst = c.wall_s(plan.expected), c.wall_s(plan.worst)
    lines = [f"  calibration: {c.seconds:.3g} s per {per}: {c.what}", f"  {c.concurrency.line()}"]
    if c.parallel != c.concurrency.n:
        lines.append(f"  {c.parallel // c.concurrency.n} fold(s) fitted in parallel per trial (tune.resources.cpu)")
    work = f"~{_n(plan.expected)} {unit} × {c.seconds:.3g} s / {c.parallel} ≈ {_duration(expected)}"
    if c.fixed is None:
        text = f"  wall time: {work}"
        if worst != expected:
            text += f" (worst case {_duration(worst)})"
        lines.append(text + "; Ray's start-up, data loading and per-epoch reporting not included")
        return lines
    f = c.fixed
    per = "" if plan.unit == "fit" else f" and {f.per_report:.2g} s per reported epoch"
    lines.append(
        f"  fixed costs here: imports and checks {f.checks:.1f} s, Ray's start {f.ray_up:.1f} s, first result "
        f"{f.first_result:.1f} s, then {f.per_trial:.2g} s per trial{per}, publishing {f.publishing:.1f} s"
    )
    reports = plan.trials if plan.unit == "fit" else plan.expected
    total = estimate(f, plan.trials, reports, expected, c.concurrency.n)
    line = (
        f"  wall time: ≈ {_duration(total.total)} = start-up {total.startup:.1f} s + fit() {_duration(total.fit)} "
        f"(work: {work}) + publishing {total.publishing:.1f} s"
    )
    if worst != expected:
        worst_reports = plan.trials if plan.unit == "fit" else plan.worst
        line += f" (worst case {_duration(estimate(f, plan.trials, worst_reports, worst, c.concurrency.n).total)})"
    lines.append(line)
    return lines


def _n(value: float) -> str:
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
