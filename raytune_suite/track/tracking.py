"""MLflow records of a sweep: one parent run per sweep, one child run per trial.

Who logs what: **only the driver talks to MLflow.** `MlflowTracker` is a Ray Tune callback, so it runs in the
process that called `Tuner.fit()` (the user's shell, or the job driver on a cluster's head node). Trials never
import MLflow; they report metrics to Tune, and the callback writes them to the child run with step = epoch.
So only the driver needs to reach the tracking store: a local SQLite file on one machine, a server on a cluster.
An estimator trial reports once (step 1: GridSearchCV's `cv_results_` row) with its fold scores as a series,
logged one step per fold (`cv_<scoring>_fold`, steps 0..k-1).

Ray's own `MLflowLoggerCallback` makes flat runs with no parent and logs Tune's bookkeeping as metrics; this one
nests trials under the sweep, logs only what the trainable reported, and ends every run with its true status.

Resuming: the trial -> run-id map (`RunMap`, `mlflow_runs.json` in the sweep's folder) lets
`MlflowTracker.attach` pick up the same parent and child runs after the driver died. A resumed trial replays
epochs from its last checkpoint, which may be older than what MLflow already holds: steps at or below a run's last
logged step are skipped, so every run's history stays 1..n without duplicates.

Schedulers that change a trial's config (PBT) cannot rewrite params (MLflow refuses: ray#20473). Each change starts
a generation: the changed values are logged as new params `gen<k>.<section>.<name>` and the tag `generation`; with
`track_config`, every epoch also logs the numeric tuned values as metrics `config/<section>.<name>`: the values
that epoch trained with, read from the result itself (Tune adds the trainable's config to every result).

Every run ends with its true status: FINISHED only for a completed sweep, KILLED for an interruption, FAILED for
an error (`finish`). Runs are ended before anything waits on the store, and ended again without the write queue
if a queued write failed. A diverged trial (`diverged` in its results) has its objective logged as NaN, is tagged
`stopped_early=diverged` and never becomes the best trial. A failed trial's run carries `error_type`,
`error_message` and `attempts` tags and its traceback as `error.txt`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray import tune

from raytune_suite.config import ExperimentConfig
from raytune_suite.config.objective import Objective, is_number
from raytune_suite.config.space import SECTIONS, resolve_trial_config
from raytune_suite.errors import UserCodeError, strip_colour
from raytune_suite.run import storage
from raytune_suite.run.sweep_folder import trial_folder
from raytune_suite.track.runmap import RunMap
from raytune_suite.track.spool import already_done
from raytune_suite.track.store import child_runs
from raytune_suite.train.estimators import SERIES
from raytune_suite.train.kinds import kind_of

# What Tune adds to every result; everything else in a result is what the trainable reported.
TUNE_BOOKKEEPING = {
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "iterations_since_restore",
    "timestamp", "pid", "done", "episodes_total", "timesteps_total", "timesteps_since_restore",
    "episodes_this_iter", "timesteps_this_iter", "should_checkpoint",
}  # fmt: skip
# MLflow caps a tag value at 8,000 characters; the full traceback goes to the run's error.txt artifact.
TAG_LIMIT = 5000
# The run map holds every trial and is rewritten whole, on Tune's event loop. Written at every trial start, a
# 400-trial sweep spent 79 s of its 293 s `fit()` there (O(trials²); cProfile on a loaded 2-CPU machine,
# `benchmarks/scale.py --profile`). So a trial start writes it only if the last write ended at least RUN_MAP_SPACING
# times that write's duration ago (as Ray spaces its own experiment snapshots: <= 5 % of the loop's time), else a
# later step does. A child run a killed driver never wrote in the map is still found by `attach`, in the store, by
# its parent tag.
RUN_MAP_SPACING = 19
# Seconds a stopped sweep waits for its queued writes before it spools the rest: a stop must end within 20 s
# (sweep.STOP_DEADLINE_S), and a store that answers takes a sweep's last writes in well under a second. A sweep that
# ends normally waits longer (store_writer.DRAIN_S): a slow store's backlog is no outage.
STOP_SETTLE_S = 5.0


def flatten(sections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """`{"train": {"lr": 0.1}}` -> `{"train.lr": "0.1"}`, the parameter names the MLflow UI shows."""
    return {f"{s}.{k}": str(v) for s in SECTIONS for k, v in sorted(sections.get(s, {}).items())}


def flatten_values(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """As `flatten`, keeping the values' types."""
    return {f"{s}.{k}": v for s in SECTIONS for k, v in sorted(sections.get(s, {}).items())}


def git_commit() -> str | None:
    """The commit of the project the sweep runs from (the working directory), if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def start_parent_run(client: MlflowClient, experiment_id: str, cfg: ExperimentConfig, sweep_name: str) -> str:
    """The sweep's parent run: fixed config as params, space and resolved config as artifacts; its kind and what one
    result is (`step`: epoch or cross-validation) as tags, which the report reads."""
    kind = kind_of(cfg)
    tags = {
        MLFLOW_RUN_NAME: sweep_name,
        "raytune_suite.run.sweep": sweep_name,
        "experiment": cfg.experiment,
        "searcher": cfg.tune.search,
        "scheduler": cfg.tune.scheduler,
        "metric": cfg.tune.metric,
        "mode": cfg.tune.mode,
        "kind": kind.name,
        "step": kind.step,
    }
    if commit := git_commit():
        tags["git_commit"] = commit
    run = client.create_run(experiment_id, run_name=sweep_name, tags=tags)
    params = flatten(cfg.fixed_sections())
    params.update(kind.parent_params(cfg))
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    space = {s: {n: p.model_dump(exclude_none=True) for n, p in ps.items()} for s, ps in cfg.space.items()}
    client.log_text(run.info.run_id, yaml.safe_dump(space, sort_keys=False), "search_space.yaml")
    client.log_text(run.info.run_id, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), "config.yaml")
    return run.info.run_id


@dataclass
class TrialRecord:
    run_id: str
    best: float | None = None
    best_epoch: int = 0
    epochs: int = 0
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_step: int = 0
    generation: int = 0
    nodes: list[str] = field(default_factory=list)
    diverged: bool = False


@dataclass
class TrialError:
    """Why a trial failed: the exception's type and message, where in the experiment's code (for its own bugs),
    and the full text Ray wrote (every attempt's traceback), colour codes removed."""

    kind: str
    message: str
    where: str
    text: str

    def line(self, trial_id: str) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"trial {trial_id}: {where}{self.kind}: {self.message}"


def trial_error(trial) -> TrialError:
    """Read from the driver's own copy of Ray's error files (the trial's storage gets them later). Ray wraps a
    trial's exception in a `RayTaskError` whose `cause` is the exception the trainable raised."""
    import cloudpickle

    text, error = "", None
    try:
        if trial.error_file and Path(trial.error_file).is_file():
            text = strip_colour(Path(trial.error_file).read_text())
        if trial.pickled_error_file and Path(trial.pickled_error_file).is_file():
            error = cloudpickle.loads(Path(trial.pickled_error_file).read_bytes())
    except Exception:  # an unreadable or unpicklable error must not break the sweep's records
        pass
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, UserCodeError):
        return TrialError(cause.kind, cause.message, cause.where, text)
    if cause is None:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        kind, _, message = (lines[-1] if lines else "unknown error").partition(": ")
        return TrialError(kind.strip() or "Error", message.strip(), "", text)
    message = str(cause).strip().splitlines()
    return TrialError(type(cause).__name__, strip_colour(message[-1] if message else ""), "", text)


class MlflowTracker(tune.Callback):
    """Driver-side Tune callback: a child run per trial under the sweep's parent run.

    Args:
        client: the MLflow client of the tracking store; a `QueuedClient`, so that no write blocks Tune's loop.
        experiment_id / parent_run_id: where child runs go.
        metric / mode: the sweep's objective, to track each trial's best value.
        max_epochs: epochs a trial trains unless the scheduler stops it.
        sweep_dir: the sweep's folder (local or a URI), where the run map is kept for resuming (None: not kept).
        track_config: log numeric tuned values as `config/*` metrics every epoch (schedulers that mutate configs).
    """

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        objective: Objective,
        max_epochs: int,
        sweep_dir: str | None = None,
        track_config: bool = False,
    ):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.objective = objective
        self.metric, self.mode, self.max_epochs = objective.metric, objective.mode, max_epochs
        self.sweep_dir = sweep_dir
        self.track_config = track_config
        self.records: dict[str, TrialRecord] = {}
        self.first_trial_started: float | None = None  # time.monotonic(): the sweep's start-up, measured
        self.open_runs: set[str] = set()
        self.interrupted = False
        self.orphans: list[str] = []
        self.earlier: set[str] = set()  # a grown sweep's trials of earlier stages: not in this fit, yet no orphans
        self.best_params = "best"  # the prefix of the best config's params (a grown sweep's stage has its own)
        self.resumes = 0
        self.active: set[str] = set()  # trials running in this session (started, restored or reporting)
        self.write_errors: list[str] = []
        self.errors: dict[str, str] = {}  # trial id -> one line saying why it failed
        self.parent_status: str | None = None  # set once the parent run is ended
        self._next_map_save = 0.0  # monotonic time before which a trial start leaves the run map to a later step
        self._map_unsaved = False  # trials started since the map was last written
        self.settle_s = 60.0  # how long ending the runs waits for queued writes (STOP_SETTLE_S once stopping)
        self._best_steps: set[int] = set()  # steps of the parent's best_<metric> already logged (record_best)
        self._ids_known = 0  # how many spooled run ids the client had resolved when the records last adopted them

    @classmethod
    def attach(cls, client: MlflowClient, sweep_dir: str, objective: Objective, max_epochs: int, **kw):
        """Re-attach to a sweep's parent and child runs after its driver died or was interrupted.

        Each run's last logged step comes from the store; epochs Ray recorded in the trial's result.json but the
        store never got (the driver died with async batches queued) are logged now, so histories stay contiguous.
        """
        run_map = RunMap.load(sweep_dir)
        resolve = getattr(client, "resolve", str)  # a run created while the store was down: its spooled id
        parent_id = resolve(run_map.parent_run_id)
        experiment_id = client.get_run(parent_id).info.experiment_id
        tracker = cls(client, experiment_id, parent_id, objective, max_epochs, sweep_dir=str(sweep_dir), **kw)
        tracker._best_steps = {m.step for m in client.get_metric_history(parent_id, f"best_{objective.metric}")}
        # A driver killed between creating a child run and saving the map leaves a run only the store knows.
        trial_runs = {trial_id: resolve(run_id) for trial_id, run_id in run_map.trials.items()}
        for run in child_runs(client, experiment_id, parent_id):
            trial_runs.setdefault(run.data.tags.get("trial_id", run.info.run_name), run.info.run_id)
        for trial_id, run_id in trial_runs.items():
            record = TrialRecord(run_id, config=run_map.configs.get(trial_id, {}))
            record.best_config = record.config
            run = client.get_run(run_id)
            tags = run.data.tags
            record.diverged = tags.get("diverged") == "true" or tags.get("stopped_early") == "diverged"
            for m in client.get_metric_history(run_id, objective.metric):
                tracker._observe(record, m.step, m.value)
            tracker._backfill(record, storage.join(trial_folder(sweep_dir, trial_id), "result.json"))
            tracker.records[trial_id] = record
            if run.info.status == "RUNNING":
                tracker.open_runs.add(run_id)
        client.update_run(parent_id, "RUNNING")
        tracker.resumes = run_map.resumes + 1
        client.set_tag(parent_id, "resumes", str(tracker.resumes))
        tracker.save_run_map()
        return tracker

    # -- Tune callback hooks ------------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        self.first_trial_started = self.first_trial_started or time.monotonic()
        self.active.add(trial.trial_id)
        if trial.trial_id in self.records:  # a retried, resumed or PBT-restarted trial keeps its run
            self._reopen(self.records[trial.trial_id])
            return
        sections = resolve_trial_config(trial.config)
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial.trial_id,
            tags={MLFLOW_PARENT_RUN_ID: self.parent_run_id, "trial_id": trial.trial_id, "status": "RUNNING"},
        )
        params = [Param(k, v) for k, v in flatten(sections).items()]
        self.client.log_batch(run.info.run_id, params=params)
        self.records[trial.trial_id] = TrialRecord(run.info.run_id, config=sections, best_config=sections)
        self.open_runs.add(run.info.run_id)
        self.save_run_map(soon=True)

    def on_trial_restore(self, iteration: int, trials: list, trial, **info) -> None:
        self.active.add(trial.trial_id)
        if trial.trial_id in self.records:
            self._reopen(self.records[trial.trial_id])

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        record = self.records.get(trial.trial_id)
        if record is None:
            return
        self.active.add(trial.trial_id)
        self._reopen(record)
        node_tags = self._node_tags(record, result)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        # The config this epoch trained with (Tune adds it to every result); trial.config may already hold the
        # next generation's, which PBT set while handling this very result.
        self._note_config_change(record, resolve_trial_config(result.get("config", trial.config)), epoch)
        if epoch > record.last_step:  # else a replay from an older checkpoint: MLflow already holds this step
            self._log_result(record, epoch, result, node_tags)
        elif node_tags:
            self.client.log_batch(record.run_id, tags=node_tags)

    def _log_result(self, record: TrialRecord, epoch: int, result: dict, tags: list[RunTag]) -> None:
        metrics = trial_metrics(result, self.metric)
        record.diverged = record.diverged or bool(result.get("diverged"))
        self._observe(record, epoch, metrics.get(self.metric))
        now = int(time.time() * 1000)
        logged = result_metrics(metrics, result, epoch, now)
        if self.track_config:
            values = flatten_values(record.config)
            logged += [Metric(f"config/{k}", float(v), now, epoch) for k, v in values.items() if is_number(v)]
        # One call for the epoch and any node tags: the writer thread's calls bound a large sweep's rate (scale.py).
        self.client.log_batch(record.run_id, metrics=logged, tags=tags)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._end_trial(trial, RunStatus.FINISHED)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        record = self.records.get(trial.trial_id)
        error = trial_error(trial)
        self.errors[trial.trial_id] = error.line(trial.trial_id)
        if record is not None:
            tags = {"error_type": error.kind, "error_message": error.message[:TAG_LIMIT], "error_where": error.where,
                    "attempts": str(trial.num_failures)}  # fmt: skip
            self.client.log_batch(record.run_id, tags=[RunTag(k, v) for k, v in tags.items() if v])
            if error.text:
                self.client.log_text(record.run_id, error.text, "error.txt")
        self._end_trial(trial, RunStatus.FAILED)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        self._adopt_store_ids()
        if self._map_unsaved:
            self.save_run_map(soon=True)

    def _adopt_store_ids(self) -> None:
        """Runs created while the store was down carry spooled ids; once it has created them (the spool replayed),
        the records, the open runs and the run map take the store's ids."""
        ids = getattr(self.client, "ids", None)
        if not ids or len(ids) == self._ids_known:
            return
        self._ids_known = len(ids)
        resolve = self.client.resolve
        for record in self.records.values():
            if record.run_id != (real := resolve(record.run_id)):
                record.run_id = real
                self._map_unsaved = True
        self.open_runs = {resolve(run_id) for run_id in self.open_runs}
        self.parent_run_id = resolve(self.parent_run_id)

    def on_experiment_end(self, trials: list, **info) -> None:
        if self._map_unsaved:
            self.save_run_map()
        self._drop_orphans({t.trial_id for t in trials} | self.earlier)
        # Tune returns normally from Ctrl-C / SIGINT: it stops running trials (status TERMINATED) without
        # completing them, so a trial this session ran but never saw end, or one never started, tells an interruption.
        self.interrupted = bool(self.active) or any(t.status in ("PENDING", "RUNNING", "PAUSED") for t in trials)

    # -- per trial -------------------------------------------------------------------------------------------
    def _observe(self, record: TrialRecord, step: int, value: Any) -> None:
        record.epochs = record.last_step = max(record.last_step, step)
        if self.objective.better(value, record.best):
            record.best, record.best_epoch, record.best_config = float(value), step, record.config

    def _backfill(self, record: TrialRecord, result_json: str) -> None:
        if not storage.exists(result_json):
            return
        logged = []
        for line in storage.read_text(result_json).splitlines():
            try:
                result = json.loads(line)
            except ValueError:  # a line cut short when the driver died
                continue
            epoch = int(result.get("epoch", result.get("training_iteration", 0)))
            if epoch <= record.last_step:
                continue
            metrics = trial_metrics(result, self.metric)
            record.diverged = record.diverged or bool(result.get("diverged"))
            self._observe(record, epoch, metrics.get(self.metric))
            logged += result_metrics(metrics, result, epoch, int(time.time() * 1000))
        for start in range(0, len(logged), 1000):  # MLflow's batch limit
            self.client.log_batch(record.run_id, metrics=logged[start : start + 1000])

    def _note_config_change(self, record: TrialRecord, sections: dict[str, dict[str, Any]], epoch: int) -> None:
        """A scheduler changed the trial's config (PBT exploit/explore): log a new generation, never a param."""
        if not record.config:  # a run adopted from the store on resume: its config comes with its first result
            record.config = record.best_config = sections
            return
        if sections == record.config:
            return
        old, new = flatten(record.config), flatten(sections)
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        record.generation += 1
        record.config = sections
        gen = record.generation
        self.client.log_batch(
            record.run_id,
            params=[Param(f"gen{gen}.{k}", v) for k, v in changed.items()],
            tags=[RunTag("generation", str(gen)), RunTag(f"gen{gen}.from_epoch", str(epoch))],
        )
        self.save_run_map(soon=True)

    def _reopen(self, record: TrialRecord) -> None:
        if record.run_id in self.open_runs:
            return
        self.client.update_run(record.run_id, "RUNNING")
        self.client.set_tag(record.run_id, "status", "RUNNING")
        self.open_runs.add(record.run_id)

    def _end_trial(self, trial, status: int) -> None:
        self.active.discard(trial.trial_id)
        record = self.records.get(trial.trial_id)
        if record is None:
            return
        tags = {"status": RunStatus.to_string(status), "epochs_trained": str(record.epochs)}
        if status == RunStatus.FINISHED and record.epochs < self.max_epochs:
            tags["stopped_early"] = "diverged" if record.diverged else "scheduler"
            tags["stopped_at_epoch"] = str(record.epochs)
        if record.diverged:
            tags["diverged"] = "true"
        if record.best is not None:
            tags[f"best_{self.metric}"] = f"{record.best:.6g}"
        self.client.log_batch(record.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(record.run_id, RunStatus.to_string(status))
        self.open_runs.discard(record.run_id)

    def _drop_orphans(self, known: set[str]) -> None:
        """Delete runs of trials the restored experiment does not know.

        Tune snapshots its experiment state every few seconds; a trial started after the last snapshot of a
        killed driver is forgotten, and the resumed searcher proposes a replacement under a new id. Its run would
        be an extra child that no trial will ever finish, so it is deleted (soft: `mlflow gc` purges it).
        """
        for trial_id in [t for t in self.records if t not in known]:
            record = self.records.pop(trial_id)
            self.client.set_tag(record.run_id, "orphaned", "trial lost with the driver; re-proposed under a new id")
            self.client.set_tag(record.run_id, "status", "KILLED")
            self.client.set_terminated(record.run_id, "KILLED")
            self.client.delete_run(record.run_id)
            self.open_runs.discard(record.run_id)
            self.orphans.append(trial_id)
        if self.orphans:
            self.save_run_map()

    # -- sweep-level -----------------------------------------------------------------------------------------
    def best_trial(self) -> tuple[str, TrialRecord] | None:
        """The trial with the best value of the objective; a trial that diverged never wins."""
        candidates = [(tid, r) for tid, r in self.records.items() if not r.diverged]
        found = self.objective.best_item((item, item[1].best) for item in candidates)
        return found[0] if found else None

    def record_best(self, complete: bool = True) -> tuple[str, TrialRecord] | None:
        """Tag the best trial and copy it to the parent.

        Its config goes to the parent as `best.*` params only when the sweep completed: an interrupted sweep's
        best may change after `--resume`, and MLflow never lets a param change (so a grown sweep's growth logs its
        own, `best_params`: grow.py).
        """
        best = self.best_trial()
        if best is None:
            return None
        trial_id, record = best
        if self.resumes:  # a resumed sweep's best may differ from the interrupted one's (a tag already gone is fine)
            for other in self.records.values():
                if other is not record:
                    self._clear_tag(other.run_id, "best_trial")
        self.client.set_tag(record.run_id, "best_trial", "true")
        params = [Param(f"{self.best_params}.{k}", v) for k, v in flatten(record.best_config).items()]
        params = params if complete else []
        # Step: the trial-epochs trained so far, which only grow, across resumes too; the best's own epoch would
        # repeat (an interrupted sweep's best at epoch 6, the resumed sweep's another trial's epoch 6).
        step = sum(r.epochs for r in self.records.values())
        metrics = [Metric(f"best_{self.metric}", record.best, int(time.time() * 1000), step)]
        metrics = [] if step in self._best_steps else metrics
        self._best_steps.add(step)
        self.client.log_batch(
            self.parent_run_id,
            metrics=metrics,
            params=params,
            tags=[
                RunTag("best_trial", trial_id),
                RunTag("best_run_id", record.run_id),
                RunTag("best_epoch", str(record.best_epoch)),
            ],
        )
        return best

    def _clear_tag(self, run_id: str, key: str) -> None:
        """Delete a tag the run may not have (a QueuedClient takes that in its stride; a plain client raises)."""
        try:
            self.client.delete_tag(run_id, key)
        except Exception as exc:
            if not already_done("delete_tag", exc):
                raise

    def close_trials(self, status: int, complete: bool) -> tuple[str, TrialRecord] | None:
        """End every child run still open with `status` and record the best trial (its `best.*` params only if
        the sweep is `complete`). Runs are ended before anything waits on the store, so a failed write never leaves
        them RUNNING; write failures are kept in `write_errors`."""
        if self._map_unsaved:  # a fit cut short may never have reached on_experiment_end
            try:
                self.save_run_map()
            except Exception as exc:  # the runs must still end
                self.write_errors.append(f"run map: {type(exc).__name__}: {exc}")
        for run_id in list(self.open_runs):
            self.client.set_tag(run_id, "status", RunStatus.to_string(status))
            self.client.set_terminated(run_id, RunStatus.to_string(status))
        ended, self.open_runs = set(self.open_runs), set()
        best = None
        try:
            best = self.record_best(complete=complete and not self.interrupted)
        except Exception as exc:  # a read that failed: the runs must still end
            self.write_errors.append(f"record_best: {type(exc).__name__}: {exc}")
        self._settle(ended, status)
        return best

    def end_parent(self, status: int) -> None:
        """End the parent run; idempotent. If any queued write failed, the runs' ends are written once more
        directly, so the store never keeps a run RUNNING because an earlier write failed."""
        if self.parent_status is not None:
            return
        self.parent_status = RunStatus.to_string(status)
        self.client.set_terminated(self.parent_run_id, self.parent_status)
        self._settle({self.parent_run_id}, status)

    def finish(self, status: int) -> tuple[str, TrialRecord] | None:
        """Close every open child run (KILLED for an interrupted sweep, FAILED for an error) and end the parent."""
        child = RunStatus.KILLED if status == RunStatus.FINISHED else status
        best = self.close_trials(child, complete=status == RunStatus.FINISHED)
        self.end_parent(status)
        return best

    def _settle(self, run_ids: set[str], status: int) -> None:
        """Wait for the queued writes; where any failed, end `run_ids` again without the queue."""
        try:
            if hasattr(self.client, "drain"):  # a QueuedClient
                self.client.drain(timeout=self.settle_s)
            return
        except Exception as exc:
            self.write_errors.append(str(exc))
        if getattr(self.client, "down", False):  # the ends are in the spool; a direct write would only wait
            return
        direct = getattr(self.client, "client", self.client)
        for run_id in run_ids:
            try:
                direct.set_terminated(run_id, RunStatus.to_string(status))
            except Exception as exc:
                self.write_errors.append(f"set_terminated {run_id}: {exc}")
        print(f"warning: MLflow writes failed: {self.write_errors[0]}", file=sys.stderr)

    def _node_tags(self, record: TrialRecord, result: dict) -> list[RunTag]:
        """The tags saying where the trial runs now, when that changed (none otherwise): `node_id`, `hostname`,
        `device`, `gpu_ids`, `world_size` of a multi-worker trial, and `node_ids`, every node it ran on in order (a
        trial retried after a node died shows two)."""
        node = result.get("node_id")
        if not node or node in record.nodes[-1:]:
            return []
        record.nodes.append(node)
        tags = {"node_id": node, "node_ids": ",".join(record.nodes)}
        tags.update({k: str(result[k]) for k in ("hostname", "device", "gpu_ids", "world_size") if k in result})
        return [RunTag(k, v) for k, v in tags.items()]

    def save_run_map(self, soon: bool = False) -> None:
        """Write the run map now; with `soon`, only if the spacing since the last write allows, else at the next
        step of Tune's loop that it does (`on_step_end`), at the latest when the experiment ends."""
        if self.sweep_dir is None:
            return
        started = time.monotonic()
        if soon and started < self._next_map_save:
            self._map_unsaved = True
            return
        resolve = getattr(self.client, "resolve", str)
        RunMap(
            parent_run_id=resolve(self.parent_run_id),
            tracking_uri=self.client.tracking_uri,
            resumes=self.resumes,
            trials={t: resolve(r.run_id) for t, r in self.records.items()},
            configs={t: r.config for t, r in self.records.items()},
        ).save(self.sweep_dir)
        finished = time.monotonic()
        self._next_map_save = finished + RUN_MAP_SPACING * (finished - started)
        self._map_unsaved = False


def result_metrics(metrics: dict[str, float], result: dict, epoch: int, now: int) -> list[Metric]:
    """One result's MLflow metrics: `metrics` at step `epoch`, and each series the trial reported whole (an
    estimator trial's fold scores, estimators.SERIES) one value per step, from step 0."""
    logged = [Metric(key, v, now, epoch) for key, v in metrics.items()]
    for key, values in (result.get(SERIES) or {}).items():
        logged += [Metric(key, float(v), now, step) for step, v in enumerate(values) if is_number(v)]
    return logged


def trial_metrics(result: dict, metric: str) -> dict[str, float]:
    """What the trainable reported, as MLflow metrics. A diverged epoch's objective is logged as NaN: the finite
    stand-in the trainable reports keeps searchers and schedulers working, but it is not a measurement."""
    metrics = {k: float(v) for k, v in result.items() if k not in TUNE_BOOKKEEPING and is_number(v)}
    if result.get("diverged") and metric in metrics:
        metrics[metric] = math.nan
    return metrics
