"""MLflow records of a sweep: one parent run per sweep, one child run per trial.

Who logs what: **only the driver talks to MLflow.** `MlflowTracker` is a Ray Tune callback, so it runs in the
process that called `Tuner.fit()` (the user's shell, or the job driver on a cluster's head node). Trials never
import MLflow; they report metrics to Tune, and the callback writes them to the child run with step = epoch.
So only the driver needs to reach the tracking store: a local SQLite file on one machine, a server on a cluster.

Ray's own `MLflowLoggerCallback` makes flat runs with no parent and logs Tune's bookkeeping as metrics; this one
nests trials under the sweep, logs only what the trainable reported, and ends every run with its true status.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
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
from raytune_suite.space import SECTIONS, resolve_trial_config

DEFAULT_DB = "mlflow.db"
RUN_MAP_FILE = "mlflow_runs.json"
# What Tune adds to every result; everything else in a result is what the trainable reported.
TUNE_BOOKKEEPING = {
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "iterations_since_restore",
    "timestamp", "pid", "done", "episodes_total", "timesteps_total", "timesteps_since_restore",
    "episodes_this_iter", "timesteps_this_iter", "should_checkpoint",
}  # fmt: skip


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else a SQLite file in the working directory (the file store is refused by MLflow 3)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def is_local_uri(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def experiment_id_for(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """Get or create the MLflow experiment; a local store keeps artifacts beside the database, by absolute path.

    A SQLite store's default artifact root is ./mlruns relative to whatever the cwd is when runs log, which
    inside a Ray job's working_dir vanishes with the job.
    """
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        location = (db.parent / "mlartifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def flatten(sections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """`{"train": {"lr": 0.1}}` -> `{"train.lr": "0.1"}`, the parameter names the MLflow UI shows."""
    return {f"{s}.{k}": str(v) for s in SECTIONS for k, v in sorted(sections.get(s, {}).items())}


def git_commit() -> str | None:
    """The commit of the project the sweep runs from (the working directory), if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def start_parent_run(client: MlflowClient, experiment_id: str, cfg: ExperimentConfig, sweep_name: str) -> str:
    """The sweep's parent run: fixed config as params, space and resolved config as artifacts."""
    tags = {
        MLFLOW_RUN_NAME: sweep_name,
        "raytune_suite.sweep": sweep_name,
        "experiment": cfg.experiment,
        "searcher": cfg.tune.search,
        "scheduler": cfg.tune.scheduler,
        "metric": f"{cfg.tune.metric} ({cfg.tune.mode})",
    }
    if commit := git_commit():
        tags["git_commit"] = commit
    run = client.create_run(experiment_id, run_name=sweep_name, tags=tags)
    params = flatten(cfg.fixed_sections())
    params.update({f"tune.{k}": str(v) for k, v in cfg.tune.model_dump(exclude={"points_to_evaluate"}).items()})
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
    nodes: list[str] = field(default_factory=list)


class MlflowTracker(tune.Callback):
    """Driver-side Tune callback: a child run per trial under the sweep's parent run.

    Args:
        client: the MLflow client of the tracking store; pass a `QueuedClient` so that no write blocks Tune.
        experiment_id / parent_run_id: where child runs go.
        metric / mode: the sweep's objective, to track each trial's best value.
        max_epochs: epochs a trial trains unless the scheduler stops it.
        run_map_path: JSON file mapping trial id -> run id, kept in the sweep's storage for resuming.
    """

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        metric: str,
        mode: str,
        max_epochs: int,
        run_map_path: Path | None = None,
    ):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.run_map_path = run_map_path
        self.records: dict[str, TrialRecord] = {}
        self.open_runs: set[str] = set()

    # -- Tune callback hooks ------------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        if trial.trial_id in self.records:  # a retried or resumed trial keeps its run
            return
        sections = resolve_trial_config(trial.config)
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial.trial_id,
            tags={MLFLOW_PARENT_RUN_ID: self.parent_run_id, "trial_id": trial.trial_id, "status": "RUNNING"},
        )
        params = [Param(k, v) for k, v in flatten(sections).items()]
        self.client.log_batch(run.info.run_id, params=params)
        self.records[trial.trial_id] = TrialRecord(run.info.run_id, config=sections)
        self.open_runs.add(run.info.run_id)
        self._save_run_map()

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        record = self.records.get(trial.trial_id)
        if record is None:
            return
        self._tag_node(record, result)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        record.epochs = epoch
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and self._better(value, record.best):
            record.best, record.best_epoch = float(value), epoch
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(v), now, epoch)
            for key, v in result.items()
            if key not in TUNE_BOOKKEEPING and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        self.client.log_batch(record.run_id, metrics=metrics)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._end_trial(trial, RunStatus.FINISHED)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._end_trial(trial, RunStatus.FAILED)

    # -- sweep-level -----------------------------------------------------------------------------------------
    def _end_trial(self, trial, status: int) -> None:
        record = self.records.get(trial.trial_id)
        if record is None:
            return
        diverged = bool((trial.last_result or {}).get("diverged"))
        tags = {"status": RunStatus.to_string(status), "epochs_trained": str(record.epochs)}
        if status == RunStatus.FINISHED and record.epochs < self.max_epochs:
            tags["stopped_early"] = "diverged" if diverged else "scheduler"
            tags["stopped_at_epoch"] = str(record.epochs)
        if record.best is not None:
            tags[f"best_{self.metric}"] = f"{record.best:.6g}"
        self.client.log_batch(record.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(record.run_id, RunStatus.to_string(status))
        self.open_runs.discard(record.run_id)

    def best_trial(self) -> tuple[str, TrialRecord] | None:
        scored = [(tid, r) for tid, r in self.records.items() if r.best is not None]
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        return pick(scored, key=lambda item: item[1].best)

    def finish(self, status: int = RunStatus.FINISHED) -> tuple[str, TrialRecord] | None:
        """Close any run still open, copy the best trial to the parent, end the parent run."""
        self.abort_open_runs(RunStatus.KILLED if status == RunStatus.FINISHED else status)
        best = self.best_trial()
        if best is not None:
            trial_id, record = best
            self.client.set_tag(record.run_id, "best_trial", "true")
            self.client.log_batch(
                self.parent_run_id,
                metrics=[Metric(f"best_{self.metric}", record.best, int(time.time() * 1000), record.best_epoch)],
                params=[Param(f"best.{k}", v) for k, v in flatten(record.config).items()],
                tags=[
                    RunTag("best_trial", trial_id),
                    RunTag("best_run_id", record.run_id),
                    RunTag("best_epoch", str(record.best_epoch)),
                ],
            )
        self.client.set_terminated(self.parent_run_id, RunStatus.to_string(status))
        self._flush()
        return best

    def abort_open_runs(self, status: int) -> None:
        """End every child run still open (interrupted sweep): never leave a RUNNING zombie in the UI."""
        for run_id in list(self.open_runs):
            self.client.set_tag(run_id, "status", RunStatus.to_string(status))
            self.client.set_terminated(run_id, RunStatus.to_string(status))
            self.open_runs.discard(run_id)

    def _tag_node(self, record: TrialRecord, result: dict) -> None:
        """Tags where the trial runs now (`node_id`, `hostname`, `device`, `gpu_ids`, `world_size` of a multi-worker
        trial) and `node_ids`, every node it ran on in order (a trial retried after a node died shows two)."""
        node = result.get("node_id")
        if not node or node in record.nodes[-1:]:
            return
        record.nodes.append(node)
        tags = {"node_id": node, "node_ids": ",".join(record.nodes)}
        tags.update({k: str(result[k]) for k in ("hostname", "device", "gpu_ids", "world_size") if k in result})
        self.client.log_batch(record.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _better(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        return best is None or (value > best if self.mode == "max" else value < best)

    def _flush(self) -> None:
        if hasattr(self.client, "drain"):  # a QueuedClient: wait for the writes in flight
            self.client.drain()

    def _save_run_map(self) -> None:
        if self.run_map_path is None:
            return
        self.run_map_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "parent_run_id": self.parent_run_id,
            "trials": {t: r.run_id for t, r in self.records.items()},
        }
        tmp = self.run_map_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(self.run_map_path)
