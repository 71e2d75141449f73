"""Run one sweep end to end: connect to Ray, open the MLflow parent run, fit, close every run, summarise."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from raytune_suite.config import ExperimentConfig
from raytune_suite.errors import ConfigError, RunFailure

# Quiet, private defaults; a user's explicit environment wins.
QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # Keeping only the newest checkpoints (CheckpointConfig.num_to_keep) makes Tune snapshot its experiment state
    # after every checkpoint, ~50 ms each here, and warn about it every epoch. The price is known and worth it:
    # keeping every epoch's checkpoint filled 0.5 GB for one MNIST demo sweep.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


@dataclass
class SweepResult:
    name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    storage_path: str
    best_trial: str | None
    best_value: float | None
    best_epoch: int
    best_config: dict[str, dict[str, Any]]
    trials: int
    failed: int
    wall_s: float
    fit_s: float


def connect_ray(
    address: str | None, *, num_cpus: int | None = None, num_gpus: int | None = None, dashboard: bool = False
) -> bool:
    """Join `address` (auto, ray://..., host:port) or start a private local instance; True if we started it.

    `dashboard`: multi-worker trials need it (see distributed.py); it binds to 127.0.0.1 only.
    """
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
        return False
    # "local" ignores a stale ray_current_cluster file that would make a plain init() join a dead cluster.
    ray.init(
        address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=dashboard,
        dashboard_host="127.0.0.1", log_to_driver=True,
    )  # fmt: skip
    return True


def open_sweep_records(uri: str, cfg: ExperimentConfig, name: str) -> tuple[Any, str, str]:
    """MLflow client, experiment id and the sweep's new parent run id."""
    from mlflow import MlflowClient

    from raytune_suite import tracking

    client = MlflowClient(tracking_uri=uri)
    experiment_id = tracking.experiment_id_for(client, cfg.mlflow.experiment_name or cfg.name, uri)
    return client, experiment_id, tracking.start_parent_run(client, experiment_id, cfg, name)


def _end_parent_if_opened(opening: Future, status: str) -> None:
    try:
        client, _, parent = opening.result()
    except Exception:
        return  # the store never opened: nothing to close
    client.set_terminated(parent, status)


def _shutdown_ray(started_by_us: bool) -> None:
    if started_by_us:
        import ray

        ray.shutdown()


def storage_location(storage: str) -> str:
    """An absolute local path (`~` expanded) or a URI (s3://, gs://, ...) kept as given: Tune takes both."""
    if "://" in storage:
        return storage
    return str(Path(storage).expanduser().resolve())


def run_sweep(
    cfg: ExperimentConfig,
    *,
    address: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    trainable=None,
) -> SweepResult:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    started = time.monotonic()

    from mlflow.entities import RunStatus

    from raytune_suite import tracking
    from raytune_suite.progress import ProgressPrinter
    from raytune_suite.store_writer import QueuedClient
    from raytune_suite.tuner import build_tuner, total_trials

    uri = tracking_uri or cfg.mlflow.tracking_uri or tracking.default_tracking_uri()
    if address and tracking.is_local_uri(uri):
        raise ConfigError(
            f"mlflow.tracking_uri: {uri} is local to this machine, but trials run on a cluster; "
            "pass --mlflow-uri http://HOST:5000 of a server every node can reach"
        )
    storage_path = storage_location(storage or cfg.run.storage)
    name = cfg.run.name or f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"

    # Opening the store (creating a new SQLite schema takes seconds) overlaps with Ray's start-up.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-open") as pool:
        opening = pool.submit(open_sweep_records, uri, cfg, name)
        try:
            started_ray = connect_ray(
                address, num_cpus=num_cpus, num_gpus=num_gpus, dashboard=cfg.tune.workers_per_trial > 1
            )
        except BaseException:
            _end_parent_if_opened(opening, "FAILED")
            raise
        try:
            client, experiment_id, parent = opening.result()
        except BaseException:
            _shutdown_ray(started_ray)
            raise

    tracker = tracking.MlflowTracker(
        QueuedClient(client), experiment_id, parent, cfg.tune.metric, cfg.tune.mode, cfg.train.epochs,
        run_map_path=None if "://" in storage_path else Path(storage_path) / name / tracking.RUN_MAP_FILE,
    )  # fmt: skip
    progress = ProgressPrinter(cfg.tune.metric, cfg.tune.mode, total_trials(cfg), cfg.train.epochs)
    try:
        kwargs = {"trainable": trainable} if trainable else {}
        tuner = build_tuner(cfg, storage_path=storage_path, name=name, callbacks=[tracker, progress], **kwargs)
        fit_started = time.monotonic()
        results = tuner.fit()
        fit_s = time.monotonic() - fit_started
    except KeyboardInterrupt:
        tracker.finish(RunStatus.KILLED)
        raise
    except BaseException:
        tracker.finish(RunStatus.FAILED)
        raise
    finally:
        _shutdown_ray(started_ray)

    failed = len(results.errors)
    status = RunStatus.FINISHED if failed < len(results) else RunStatus.FAILED
    best = tracker.finish(status)
    outcome = SweepResult(
        name=name, tracking_uri=uri, experiment_id=experiment_id, parent_run_id=parent,
        storage_path=f"{storage_path.rstrip('/')}/{name}",
        best_trial=best[0] if best else None, best_value=best[1].best if best else None,
        best_epoch=best[1].best_epoch if best else 0, best_config=best[1].config if best else {},
        trials=len(results), failed=failed, wall_s=time.monotonic() - started, fit_s=fit_s,
    )  # fmt: skip
    if failed == len(results):
        raise RunFailure(f"all {failed} trials failed; first error: {results.errors[0]}")
    return outcome
