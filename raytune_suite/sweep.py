"""Run one sweep end to end: connect to Ray, open the MLflow parent run, fit, close every run, summarise.

Interruptions: Ctrl-C (SIGINT) and SIGTERM both make Ray Tune stop, save its experiment state and return; every
MLflow run still open is then ended KILLED, an exception ends them FAILED. `resume=` continues such a sweep (or one
whose driver was killed outright) from its folder with `Tuner.restore`, on the same parent and child runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from raytune_suite.config import ExperimentConfig
from raytune_suite.errors import ConfigError, RunFailure

SWEEP_CONFIG = "sweep_config.yaml"
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


def storage_location(storage: str) -> str:
    """An absolute local path (`~` expanded) or a URI (s3://, gs://, ...) kept as given: Tune takes both."""
    if "://" in storage:
        return storage
    return str(Path(storage).expanduser().resolve())


def _shutdown_ray(started_by_us: bool) -> None:
    if started_by_us:
        import ray

        ray.shutdown()


def run_sweep(
    cfg: ExperimentConfig,
    *,
    address: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    trainable=None,
    resume: str | Path | None = None,
    register_model: str | None = None,
) -> SweepResult:
    """Run (or with `resume`, continue) a sweep; `resume` is a sweep folder, or "" for this config's latest."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    started = time.monotonic()

    from mlflow import MlflowClient
    from mlflow.entities import RunStatus

    from raytune_suite import tracking
    from raytune_suite.progress import ProgressPrinter
    from raytune_suite.schedulers import SCHEDULERS
    from raytune_suite.store_writer import QueuedClient
    from raytune_suite.tuner import build_tuner, total_trials

    storage_path = storage_location(storage or cfg.run.storage)
    if resume is not None:
        sweep_dir = find_sweep_dir(resume, storage_path, cfg.name)
        cfg = stored_config(sweep_dir)
        uri = tracking_uri or tracking.load_run_map(sweep_dir).get("tracking_uri")
    else:
        uri = tracking_uri or cfg.mlflow.tracking_uri or tracking.default_tracking_uri()
    if address and tracking.is_local_uri(uri):
        raise ConfigError(
            f"mlflow.tracking_uri: {uri} is local to this machine, but trials run on a cluster; "
            "pass --mlflow-uri http://HOST:5000 of a server every node can reach"
        )
    SCHEDULERS[cfg.tune.scheduler](cfg)  # config errors (pbt's) before any run exists

    client = QueuedClient(MlflowClient(tracking_uri=uri))
    track = {"track_config": cfg.tune.scheduler == "pbt"}
    if resume is not None:
        name, storage_path = sweep_dir.name, str(sweep_dir.parent)
        tracker = tracking.MlflowTracker.attach(
            client, sweep_dir, cfg.tune.metric, cfg.tune.mode, cfg.train.epochs, **track
        )
        experiment_id, parent = tracker.experiment_id, tracker.parent_run_id
    else:
        name = cfg.run.name or f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
        sweep_dir = Path(storage_path) / name
        experiment_id = tracking.experiment_id_for(client, cfg.mlflow.experiment_name or cfg.name, uri)
        parent = tracking.start_parent_run(client, experiment_id, cfg, name)
        tracker = tracking.MlflowTracker(
            client, experiment_id, parent, cfg.tune.metric, cfg.tune.mode, cfg.train.epochs,
            run_map_path=None if "://" in storage_path else sweep_dir / tracking.RUN_MAP_FILE, **track,
        )  # fmt: skip
        if "://" not in storage_path:  # resuming needs the config beside Ray's state; remote storage: no resume
            save_config(cfg, sweep_dir)
    progress = ProgressPrinter(cfg.tune.metric, cfg.tune.mode, total_trials(cfg), cfg.train.epochs)

    started_ray = False
    try:
        started_ray = connect_ray(
            address, num_cpus=num_cpus, num_gpus=num_gpus, dashboard=cfg.tune.workers_per_trial > 1
        )
        kwargs = {"trainable": trainable} if trainable else {}
        if resume is not None:
            tuner = restore_tuner(cfg, sweep_dir, callbacks=[tracker, progress], **kwargs)
        else:
            tuner = build_tuner(cfg, storage_path=storage_path, name=name, callbacks=[tracker, progress], **kwargs)
        fit_started = time.monotonic()
        with sigterm_as_sigint():  # after ray.init, which installs a SIGTERM handler of its own
            results = tuner.fit()
        fit_s = time.monotonic() - fit_started
    except KeyboardInterrupt:
        tracker.finish(RunStatus.KILLED)
        print_resume_hint(sweep_dir)
        raise
    except BaseException:
        tracker.finish(RunStatus.FAILED)
        print_resume_hint(sweep_dir)
        raise
    finally:
        _shutdown_ray(started_ray)
    if tracker.interrupted:  # Tune returns normally after SIGINT/SIGTERM, with trials unfinished
        tracker.finish(RunStatus.KILLED)
        print_resume_hint(sweep_dir)
        raise KeyboardInterrupt

    failed = len(results.errors)
    status = RunStatus.FINISHED if failed < len(results) else RunStatus.FAILED
    tracker.abort_open_runs(RunStatus.KILLED)
    best = tracker.record_best(complete=True)
    publish(tracker, cfg, sweep_dir, best, register_model)
    tracker.end_parent(status)
    outcome = SweepResult(
        name=name, tracking_uri=uri, experiment_id=experiment_id, parent_run_id=parent,
        storage_path=f"{storage_path.rstrip('/')}/{name}",
        best_trial=best[0] if best else None, best_value=best[1].best if best else None,
        best_epoch=best[1].best_epoch if best else 0, best_config=best[1].best_config if best else {},
        trials=len(results), failed=failed, wall_s=time.monotonic() - started, fit_s=fit_s,
    )  # fmt: skip
    if failed == len(results):
        raise RunFailure(f"all {failed} trials failed; first error: {results.errors[0]}")
    return outcome


# -- resume ----------------------------------------------------------------------------------------------------
def save_config(cfg: ExperimentConfig, sweep_dir: Path) -> None:
    """The resolved config beside Ray's state, so `--resume` continues exactly the sweep that was started."""
    import yaml

    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEEP_CONFIG).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def stored_config(sweep_dir: Path) -> ExperimentConfig:
    import yaml

    from raytune_suite.config import validate_config

    path = sweep_dir / SWEEP_CONFIG
    if not path.is_file():
        raise ConfigError(f"--resume {sweep_dir}: no {SWEEP_CONFIG} there; pass the sweep folder `run` printed")
    return validate_config(yaml.safe_load(path.read_text()))


def find_sweep_dir(resume: str | Path, storage_path: str, config_name: str) -> Path:
    """`resume` itself, or (empty) the newest sweep of this config under the storage folder."""
    from raytune_suite.tracking import RUN_MAP_FILE

    if str(resume):
        path = Path(resume).resolve()
        if not (path / "tuner.pkl").is_file():
            raise ConfigError(f"--resume {resume}: not a sweep folder (no tuner.pkl); pass the folder `run` printed")
        return path
    candidates = sorted(Path(storage_path).glob(f"{config_name}*/{RUN_MAP_FILE}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"--resume: no sweep of {config_name} under {storage_path}; pass its folder: --resume DIR")
    return candidates[-1].parent


def restore_tuner(cfg: ExperimentConfig, sweep_dir: Path, *, callbacks: list, trainable=None):
    """`Tuner.restore` with errored trials resumed from their checkpoints, and today's callbacks.

    Ray pickles the RunConfig (callbacks included) into tuner.pkl at the start of a sweep; the restored copies
    would be stale objects this driver cannot see, so they are replaced by the live ones.
    """
    from ray import tune

    from raytune_suite.trainable import train_trial

    resources = {"cpu": cfg.tune.resources.cpu, "gpu": cfg.tune.resources.gpu}
    tuner = tune.Tuner.restore(
        str(sweep_dir), trainable=tune.with_resources(trainable or train_trial, resources), resume_errored=True
    )
    if tuner._local_tuner is None:  # Ray Client (ray://) keeps the tuner on the cluster, out of reach
        raise ConfigError("--resume: run the driver on the cluster (--address auto or ray job submit), not via ray://")
    tuner._local_tuner.get_run_config().callbacks = list(callbacks)
    return tuner


def print_resume_hint(sweep_dir: Path) -> None:
    if (sweep_dir / "tuner.pkl").is_file():
        print(f"sweep state saved; continue it with: raytune-suite run EXPERIMENT.yaml --resume {sweep_dir}",
              file=sys.stderr)  # fmt: skip


def as_sigint(signum, frame) -> None:
    """Run whatever handles SIGINT now (Tune's graceful stop inside `fit`, else KeyboardInterrupt).

    Calling it directly, not re-raising SIGINT: a process started in the background inherits SIGINT ignored.
    """
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


@contextlib.contextmanager
def sigterm_as_sigint():
    """Treat SIGTERM (a scheduler, `kill`, a container stop) like Ctrl-C: Tune stops and saves its state."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- results ---------------------------------------------------------------------------------------------------
def publish(tracker, cfg: ExperimentConfig, sweep_dir: Path, best, register_model: str | None) -> None:
    """Report artifacts on the parent run, the best trial's model on its run. A failure here warns only:
    the sweep's records and exit status matter more than a plot."""
    from raytune_suite import report, tracking

    try:
        with tempfile.TemporaryDirectory() as tmp:
            sweep = report.load_sweep(tracker.client, tracker.parent_run_id)
            report.write_report(sweep, Path(tmp))
            tracker.client.log_artifacts(tracker.parent_run_id, tmp)
    except Exception as exc:
        print(f"warning: report artifacts not logged: {type(exc).__name__}: {exc}", file=sys.stderr)
    if best is None:
        return
    trial_id, record = best
    trial_dir = sweep_dir / f"trial_{trial_id}"
    try:
        uri = tracking.log_best_model(tracker.client, record.run_id, cfg, trial_dir, record.config, register_model)
        if uri is None:
            print(f"warning: best model not logged: no checkpoint under {trial_dir}", file=sys.stderr)
    except Exception as exc:
        print(f"warning: best model not logged: {type(exc).__name__}: {exc}", file=sys.stderr)
