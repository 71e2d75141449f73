"""What a sweep costs besides its training, measured on this machine for `validate --plan --calibrate`.

A sweep's command pays, besides its trial-epochs (or cross-validation fits): its imports and checks; Ray's start
(beside the MLflow parent run's); Tune's start-up and a trial process's (its imports, the data loaded) before the
first result; a little per trial (the hand-over of a process to the next trial, its MLflow run) and per reported
epoch (the result and its checkpoint); and publishing at the end (the report, the best model, Ray's shutdown
meanwhile). On small data these are most of the time: a 12-point SVC grid whose fits take 60 × 0.03 s took 30-40 s.

`measure` runs a small sweep of the experiment itself through `sweep.run_sweep`, the code `raytune-suite run`
runs, on a private local Ray instance, with a store and results folder in a temporary folder deleted afterwards:
`TRIALS` trials (at least two per trial process) of the experiment's own data and model whose epochs do no
training (`fixed_cost_trial`: load the data, build the model or estimator, report `REPORTS` epochs, each with a
real checkpoint), then publishing. The phases `run_sweep` times and the timestamps each report carries split it into
the parts above; `estimate` adds them to the calibrated work (plan.py).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raytune_suite.config import ExperimentConfig
from raytune_suite.train.kinds import kind_of

# Trials of the measuring sweep: at least two per trial process (a hand-over each), and enough for the report's
# parameter-importance plot (report.MIN_TRIALS_FOR_IMPORTANCE), which publishing then draws as a real sweep's does.
TRIALS = 6
# Epochs each measuring trial reports: the gaps between them are the cost per reported epoch.
REPORTS = 3
STAMP = "fixed_cost_t"  # the wall-clock time of each report, in its result
PID = "fixed_cost_pid"  # the trial's process, in its result


@dataclass(frozen=True)
class FixedCosts:
    """Seconds, measured here.

    Args:
        checks: the command's imports and checks (the preflight, with the experiment's smoke check).
        ray_up: Ray's start, beside the MLflow parent run's (the later of the two).
        first_result: from Tune's `fit()` to the first trial's first result: Tune's start-up, a trial process
            started, its imports, the data loaded, the model built.
        per_trial: the next trial in a process, from its predecessor's last result to its own first.
        per_report: one more reported epoch (a result and, for a torch trial, its checkpoint).
        publishing: after `fit()`: the runs ended, the report and the best model logged, Ray shut down meanwhile.
        concurrency: trials the measuring sweep ran at once.
    """

    checks: float
    ray_up: float
    first_result: float
    per_trial: float
    per_report: float
    publishing: float
    concurrency: int

    @property
    def startup(self) -> float:
        return self.checks + self.ray_up


@dataclass(frozen=True)
class Estimate:
    """A sweep's wall time in the parts `run`'s last line splits it into."""

    startup: float
    fit: float
    publishing: float
    work: float  # the trial-epochs' (or fits') own seconds, part of `fit`

    @property
    def total(self) -> float:
        return self.startup + self.fit + self.publishing


def estimate(costs: FixedCosts, trials: int, reports: float, work_s: float, concurrency: int) -> Estimate:
    """`trials` trials reporting `reports` results in all (trial-epochs; one per estimator trial), whose work takes
    `work_s` at `concurrency` trials at once."""
    waves = math.ceil(trials / max(1, concurrency))
    fit = costs.first_result + (waves - 1) * costs.per_trial + reports / max(1, concurrency) * costs.per_report
    return Estimate(costs.startup, fit + work_s, costs.publishing, work_s)


def measuring_config(cfg: ExperimentConfig, trials: int) -> ExperimentConfig:
    """The sweep `measure` runs: the experiment's own config, `trials` random draws of its space, FIFO, one process
    per trial, `REPORTS` epochs, in a store of its own."""
    tune = cfg.tune.model_copy(
        update={"search": "random", "scheduler": "fifo", "num_samples": trials, "workers_per_trial": 1,
                "points_to_evaluate": [], "max_failures": 0}
    )  # fmt: skip
    update: dict[str, Any] = {"tune": tune, "run": cfg.run.model_copy(update={"name": "fixed-costs"})}
    if kind_of(cfg).per_epoch:
        train = cfg.train.model_copy(update={"epochs": REPORTS, "warmup_epochs": 0.0})
        update["train"] = train
    return cfg.model_copy(update=update)


def measure(cfg: ExperimentConfig, num_cpus: int | None, checks_s: float, concurrency: int) -> FixedCosts:
    """Run the measuring sweep (see the module docstring); its console output is kept back unless it fails."""
    from raytune_suite.run.sweep import run_sweep

    trials = max(TRIALS, 2 * concurrency)
    mini = measuring_config(cfg, trials)
    output = io.StringIO()
    logging.disable(logging.INFO)  # Ray's INFO lines (its start, Tune's state files) are not the plan's
    with tempfile.TemporaryDirectory(prefix="rts-fixed-costs-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        wall, mono = time.time(), time.monotonic()
        try:
            with contextlib.redirect_stdout(output):
                result = run_sweep(mini, tracking_uri=uri, storage=str(Path(tmp) / "results"), num_cpus=num_cpus,
                                   trainable=fixed_cost_trial)  # fmt: skip
        except BaseException:
            print(output.getvalue()[-3000:], end="")
            raise
        finally:
            logging.disable(logging.NOTSET)
        fit_start_wall = wall + (result.started + result.phases["fit_start"] - mono)
        stamps = report_stamps(Path(result.storage_path))
    first, per_trial, per_report = split_fit(stamps, fit_start_wall)
    return FixedCosts(
        checks=checks_s, ray_up=result.phases["fit_start"], first_result=first, per_trial=per_trial,
        per_report=per_report, publishing=result.phases["ray_down"] - result.phases["fit_end"],
        concurrency=concurrency,
    )  # fmt: skip


def report_stamps(sweep_dir: Path) -> dict[tuple[int, str], list[float]]:
    """(process id, trial id) -> the wall-clock times of the trial's reports, from Tune's result.json files."""
    stamps: dict[tuple[int, str], list[float]] = {}
    for path in sweep_dir.glob("trial_*/result.json"):
        for line in path.read_text().splitlines():
            result = json.loads(line)
            if STAMP in result:
                stamps.setdefault((int(result[PID]), result["trial_id"]), []).append(float(result[STAMP]))
    return stamps


def split_fit(stamps: dict[tuple[int, str], list[float]], fit_start: float) -> tuple[float, float, float]:
    """(first result after `fit_start`, median hand-over to the next trial in a process, median gap between
    a trial's reports)."""
    if not stamps:
        raise RuntimeError("the measuring sweep reported no result")
    first = min(min(times) for times in stamps.values()) - fit_start
    gaps = [b - a for times in stamps.values() for a, b in itertools.pairwise(sorted(times))]
    handovers = []
    for pid in {pid for pid, _ in stamps}:
        runs = sorted((sorted(times) for (p, _), times in stamps.items() if p == pid), key=lambda t: t[0])
        handovers += [later[0] - earlier[-1] for earlier, later in itertools.pairwise(runs)]
    return first, statistics.median(handovers or [0.0]), statistics.median(gaps or [0.0])


def fixed_cost_trial(config: dict[str, Any]) -> None:
    """A trial of the experiment with the fixed costs of a real one and no training: its imports, the data loaded
    (cached per process, as trials do), the model and optimizer built, and `REPORTS` epochs reported, each with a
    real checkpoint; an estimator trial builds its estimator and reports once."""
    from ray import tune

    from raytune_suite.train.trial_process import cached_data, experiment_code

    suite = config["suite"]
    stamp = {PID: os.getpid()}
    if "cv" in suite:  # an estimator experiment (tuner.param_space)
        from raytune_suite.config.space import resolve_trial_config
        from raytune_suite.experiments import load_experiment

        experiment, sections = load_experiment(suite["experiment"]), resolve_trial_config(config)
        with experiment_code(experiment):
            cached_data(experiment.ref, experiment.DataConfig.model_validate(sections["data"]).model_dump_json(),
                        suite["split_seed"])  # fmt: skip
            experiment.build_estimator(experiment.ModelConfig.model_validate(sections["model"]))
        tune.report({suite["metric"]: 0.5, **stamp, STAMP: time.time()})
        return
    from raytune_suite.train.trainable import Trial, build_training, pick_device, save_checkpoint

    trial = Trial.from_config(config)
    with experiment_code(trial.experiment):
        data = cached_data(trial.experiment.ref, trial.data.model_dump_json(), trial.split_seed)
    t = build_training(trial, data, pick_device(0))
    for epoch in range(1, trial.train.epochs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(tmp, t.model, t.optimizer, t.scheduler, epoch, t.gen, t.scaler)
            metrics = {"epoch": epoch, "train_loss": 1.0, trial.metric: 0.5, **stamp, STAMP: time.time()}
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
