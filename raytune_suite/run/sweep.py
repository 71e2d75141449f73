"""Run one sweep end to end: open the MLflow parent run, connect to Ray, fit, publish, close every run.

Exits, and what each leaves in the store:
- completed: every run FINISHED (failed trials' runs FAILED; the parent FAILED only if every trial failed);
- Ctrl-C / SIGTERM in any phase (start-up, fit, publishing): Ray Tune stops and saves its state, every open run is
  ended KILLED, exit 130 with the resume command; a stop that Tune has not honoured `STOP_GRACE_S` after SIGTERM
  is forced, as a second Ctrl-C would, and `STOP_DEADLINE_S` after the first stop request the process ends
  whatever it still waits on (what is queued for MLflow spooled first);
- the tracking store stops answering: the trials go on, MLflow writes go to the sweep's spool (store_writer.py,
  spool.py) and are written when it answers again; if it still does not at the end (after `END_WAIT_S`), every
  trial has run, the report and model wait for `raytune-suite sync DIR`, and the exit is 1 with that command;
- any exception (unwritable storage, a store that fails for a reason of its own, a bug): every open run FAILED,
  exit 1;
- SIGKILL: runs stay RUNNING, but the sweep folder (config and run map, written with the parent run while Ray
  starts) lets `--resume` continue on the same parent and child runs, with `Tuner.restore` when Ray saved its
  state, else as a new start on the same parent.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from raytune_suite.config import ExperimentConfig
from raytune_suite.errors import RunFailure, strip_colour
from raytune_suite.run import storage as files  # the module; `storage` is run_sweep's argument
from raytune_suite.run.sweep_folder import (
    RESUMED_FLAGS,
    ResumeHint,
    find_sweep_dir,
    resumed_flags,
    save_config,
    save_flags,
    storage_location,
    stored_config,
    sweep_name,
)
from raytune_suite.run.tuner import total_trials
from raytune_suite.track.runmap import RunMap
from raytune_suite.track.store import pick_tracking_uri
from raytune_suite.train.kinds import Kind, kind_of

if TYPE_CHECKING:
    from raytune_suite.track.store_writer import WriterStats

# Seconds Tune gets to stop after a SIGTERM before the stop is forced: it then waits on trial actors that may never
# answer (measured: 61 s while trials kept failing); a forced stop still resumes from Tune's last state snapshot.
STOP_GRACE_S = 10.0
# Seconds `ray.init` gets to finish after a stop request before it is cut short: its own start-up timeouts are
# longer than this only when it keeps retrying an address that does not answer (a cold start took 3.5-7.6 s here).
START_GRACE_S = 10.0
# Seconds after the first stop request by which the process has ended, whatever it waits on (a store that does not
# answer, a Ray shutdown that hangs): README promises 20 s, and the interpreter's own exit needs a moment.
STOP_DEADLINE_S = 18.0
# Seconds the end of a sweep waits for a tracking store that stopped answering to answer again before it exits
# with its writes in the spool (a restarted `mlflow server` answers in ~10 s).
END_WAIT_S = 30.0
# Seconds `ray.shutdown()` gets (1-2 s measured); past them the watcher (reaper.py) ends Ray's processes at exit.
RAY_DOWN_S = 30.0
# Quiet, private defaults; a user's explicit environment wins.
QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # Keeping only the newest checkpoints (CheckpointConfig.num_to_keep) makes Tune snapshot its experiment state
    # after every checkpoint, ~50 ms each here, and warn about it every epoch. The price is known and worth it:
    # keeping every epoch's checkpoint filled 0.5 GB for one MNIST demo sweep.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Ray's console reporter prints a config box and a TensorBoard hint into its session temp folder even at
    # verbose=0; the suite's progress lines replace it, and its summary points TensorBoard at the sweep folder.
    "RAY_AIR_NEW_OUTPUT": "0",
    # MLflow draws a progress bar for every artifact download (the report reads config.yaml back).
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # With a tracking server MLflow prints two "View run" links every time a run ends: 2 lines per trial.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
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
    phases: dict[str, float]  # seconds since the start: ray_up, fit_start, first_trial, fit_end, published, ray_down
    writer: WriterStats | None = None  # what the MLflow writer thread did (store_writer.QueuedClient.stats)
    started: float = 0.0  # time.monotonic() when run_sweep began: what came before it is the caller's


def connect_ray(
    address: str | None, *, num_cpus: int | None = None, num_gpus: int | None = None, dashboard: bool = False
) -> None:
    """Join `address` (auto, ray://..., host:port) or start a private local instance (unless Ray is up already).

    `dashboard`: multi-worker trials need it (see distributed.py); it binds to 127.0.0.1 only.
    """
    import ray

    from raytune_suite.run import ray_compat

    if ray.is_initialized():
        return
    ray_compat.driver_keeps_its_signal_handlers()
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    from raytune_suite.run.reaper import follow

    follow()  # the local instance's processes end with this driver, even one killed outright
    # "local" ignores a stale ray_current_cluster file that would make a plain init() join a dead cluster.
    ray.init(
        address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=dashboard,
        dashboard_host="127.0.0.1", log_to_driver=True,
    )  # fmt: skip


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
    config_path: str | Path | None = None,
    grow_to: int | None = None,
) -> SweepResult:
    """Run (or with `resume`, continue) a sweep; `resume` is a sweep folder, or "" for this config's latest.
    With `resume`, `grow_to` is a larger `tune.num_samples`: the sweep is finished, then grown to it (grow.py).

    Exits: returns when the sweep completed (every run FINISHED, or FAILED for failed trials); raises
    `KeyboardInterrupt` after Ctrl-C or SIGTERM in any phase (every open run KILLED, the resume command printed);
    any other exception ends every open run FAILED and propagates. The config and the run map are written before
    any trial starts, so even a driver killed outright leaves a folder that `--resume` continues on the same runs.
    """
    from raytune_suite.run.console import quiet_ray
    from raytune_suite.track.store_writer import HTTP_DEADLINES

    for key, value in {**QUIET_ENV, **HTTP_DEADLINES}.items():
        os.environ.setdefault(key, value)
    started = time.monotonic()
    storage_path = storage_location(storage or cfg.run.storage)
    flags = {"num_cpus": num_cpus, "num_gpus": num_gpus, "address": address, "register_model": register_model}
    if resume is not None:
        sweep_dir = find_sweep_dir(resume, storage_path, cfg.name)
        cfg = stored_config(sweep_dir)
        flags = resumed_flags(sweep_dir, flags)  # those not given again: as the sweep started
        num_cpus, num_gpus, address, register_model = (flags[k] for k in RESUMED_FLAGS)
        if grow_to is not None:
            from raytune_suite.run.grow import check_growth

            check_growth(cfg, sweep_dir, grow_to)
        uri, _ = pick_tracking_uri(tracking_uri, saved=RunMap.load(sweep_dir).tracking_uri)
    else:
        uri, _ = pick_tracking_uri(tracking_uri, config=cfg.mlflow.tracking_uri)
        name = cfg.run.name or f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}"
        sweep_dir = files.join(storage_path, name)
    if address == "local":  # `--resume DIR --address local`: a private instance, not the sweep's own address
        address = flags["address"] = None
    import ray

    from raytune_suite.run import ray_compat

    ray_compat.apply()  # the suite's workarounds of Ray 2.60, for new, resumed and grown sweeps alike
    quiet_ray()
    hint = ResumeHint(sweep_dir, config_path, flags)
    tracker = None
    phases: dict[str, float] = {}  # seconds since the start: Ray up, first trial started, fit ended, published...
    ray_down: Future | None = None
    ray_was_up = ray.is_initialized()
    _deadline.last_words = [lambda: tracker and tracker.client.abandon(), hint.say]
    with sigterm_as_sigint():
        try:
            say(f"sweep {sweep_name(sweep_dir)}: starting Ray and the MLflow parent run ({uri})")
            # The store (a new SQLite one builds its schema: seconds), Tune's own imports and Ray start at once.
            opening = in_background(open_tracker_then_warm, cfg, uri, sweep_dir, resume is not None)
            try:
                with stops_held_until_ray_is_up():
                    connect_ray(address, num_cpus=num_cpus, num_gpus=num_gpus, dashboard=kind_of(cfg).uses_dashboard)
            finally:
                tracker = opening.result()
            from mlflow.entities import RunStatus  # imported by now, on the tracker's thread

            from raytune_suite.review.publish import publish
            from raytune_suite.track import spool

            save_flags(flags, sweep_dir)
            phases["ray_up"] = time.monotonic() - started
            up = f"Ray up after {phases['ray_up']:.1f} s ({ray_shape(address)})"
            say(f"MLflow parent run {tracker.parent_run_id}; {up}")
            fit_started = time.monotonic()
            phases["fit_start"] = fit_started - started
            stage, results = fit_stages(cfg, sweep_dir, tracker, trainable, resume is not None, grow_to)
            fit_s = time.monotonic() - fit_started
            phases["first_trial"] = (tracker.first_trial_started or fit_started) - started
            phases["fit_end"] = time.monotonic() - started
            if not ray_was_up:  # publishing needs no Ray: its ~1.5 s shutdown runs meanwhile
                ray_down = in_background(ray.shutdown)
            trials, failed = stage.counts(results)
            status = RunStatus.FINISHED if failed < trials else RunStatus.FAILED
            # Any run still open was never ended by Tune: KILLED.
            best = tracker.close_trials(RunStatus.KILLED, complete=True)
            if tracker.client.settle(END_WAIT_S):  # the store holds every record so far (or answers again)
                say("publishing: report artifacts on the parent run, the best trial's model on its run")
                publish(tracker, cfg, sweep_dir, best, register_model)
            else:  # `sync` publishes once it has written the rest
                tracker.client.set_tag(tracker.parent_run_id, spool.PUBLISH_PENDING, register_model or "")
            tracker.end_parent(status)
            phases["published"] = time.monotonic() - started
        except (KeyboardInterrupt, SystemExit):  # SystemExit: a trainable or library that calls sys.exit
            _deadline.arm()
            end_runs(tracker, "KILLED")
            hint.say()
            raise KeyboardInterrupt from None
        except BaseException:
            end_runs(tracker, "FAILED")
            hint.say()
            raise
        finally:
            try:
                if ray_down is None and not ray_was_up:  # also after a ray.init cut short: it kills what it started
                    ray_down = in_background(ray.shutdown)
                if ray_down is not None:
                    ray_down.result(timeout=RAY_DOWN_S)
            except FutureTimeout:
                print(f"warning: Ray did not shut down within {RAY_DOWN_S:.0f} s; its processes end with this "
                      "command", file=sys.stderr)  # fmt: skip
            finally:
                _deadline.disarm()
            phases["ray_down"] = time.monotonic() - started
    outcome = SweepResult(
        name=sweep_name(sweep_dir), tracking_uri=uri, experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_run_id, storage_path=str(sweep_dir),
        best_trial=best[0] if best else None, best_value=best[1].best if best else None,
        best_epoch=best[1].best_epoch if best else 0, best_config=best[1].best_config if best else {},
        trials=trials, failed=failed, wall_s=time.monotonic() - started, fit_s=fit_s, phases=phases,
        writer=getattr(tracker.client, "stats", None), started=started,
    )  # fmt: skip
    if failed == trials:
        first = next(iter(tracker.errors.values()), None) or first_error(results)
        raise RunFailure(f"all {failed} trials failed; first: {first}")
    if tracker.write_errors:
        raise RunFailure(f"{len(tracker.write_errors)} MLflow write(s) failed; first: {tracker.write_errors[0]}")
    if tracker.client.down or tracker.client.spooled:
        raise RunFailure(
            f"the MLflow store {uri} did not answer: every trial ran, and {tracker.client.spooled} record(s) of the "
            f"sweep are kept in {tracker.client.spool.folder}; write them (and the report) with: "
            f"raytune-suite sync {sweep_dir}"
        )
    return outcome


def first_error(results) -> str:
    if not results.errors:  # every failure was an earlier stage's (a grown sweep): their runs say why
        return "see the failed runs' error.txt"
    return strip_colour(str(results.errors[0])).splitlines()[-1]


def in_background(fn, *args) -> Future:
    """`fn(*args)` on a daemon thread: a driver stopped meanwhile is not kept alive by it."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, name=fn.__name__, daemon=True).start()
    return future


def open_tracker_then_warm(cfg: ExperimentConfig, uri: str, sweep_dir: str, resume: bool):
    """`open_tracker`, then `warm_tune_imports` on the same thread: done before `make_tuner` imports Tune on the
    main thread, so no two threads import the same modules at once (a circular import between them can fail)."""
    tracker = open_tracker(cfg, uri, sweep_dir, resume)
    with contextlib.suppress(Exception):  # only a head start: fit() imports them itself, and reports what fails
        warm_tune_imports()
    return tracker


def warm_tune_imports() -> None:
    """Import, while Ray starts, what Tune's `fit()` would import on the main thread before its first trial starts:
    its TensorBoard logger's tensorboardX (boto3 and protobuf beneath it) and the integrations its census of
    callback types imports (tests/unit/test_sweep_startup.py)."""
    with contextlib.suppress(ImportError):
        import tensorboardX  # noqa: F401  (Tune's default TensorBoard logger)
    with contextlib.suppress(ImportError):  # an import only (Tune's usage census): no API of it is used
        import ray.air._internal.usage  # noqa: F401
    from ray.air.integrations import comet, mlflow, wandb  # noqa: F401  (Tune's callback census imports them)
    from ray.tune.logger import aim  # noqa: F401


class OnFirstResult(tune.Callback):
    """Starts `fn(*args)` on a background thread when the sweep's first result arrives: a trial's process is up by
    then. Work started with `fit()` instead competes with the trial processes' start-up: importing the report
    libraries then delayed the first trial by 1.2 s on 2 CPUs (sweep_overhead.py's start-up column)."""

    def __init__(self, fn, *args) -> None:
        self.call: tuple | None = (fn, *args)

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        if self.call is not None:
            call, self.call = self.call, None
            in_background(*call)


def prepare_publishing(kind: Kind) -> None:
    """Import what publishing needs after the last trial (the report's libraries, the kind's model flavour) while
    the trials train."""
    from raytune_suite.review import report

    report.prepare()
    kind.prepare_publishing()


def say(text: str) -> None:
    print(text, flush=True)


def open_tracker(cfg: ExperimentConfig, uri: str, sweep_dir: str, resume: bool):
    """The MLflow side of a sweep: a new parent run, its config and run map saved beside Ray's state; or, to
    resume, the parent and child runs the sweep folder names, after what an earlier session spooled is written."""
    from raytune_suite.track import tracking
    from raytune_suite.track.spool import Spool, spool_folder
    from raytune_suite.track.store import open_sweep_store

    track = {"track_config": cfg.tune.scheduler == "pbt"}
    objective = (cfg.objective, kind_of(cfg).max_steps(cfg))
    spool = Spool(spool_folder(sweep_dir))
    if resume:
        client, _ = open_sweep_store(uri, None)
        write_spooled(client.client, spool, sweep_dir)
        client.spool_to(spool, sweep_dir)
        return tracking.MlflowTracker.attach(client, sweep_dir, *objective, **track)
    client, experiment_id = open_sweep_store(uri, cfg.mlflow.experiment_name or cfg.name)
    client.spool_to(spool, sweep_dir)
    parent = tracking.start_parent_run(client, experiment_id, cfg, sweep_name(sweep_dir))
    tracker = tracking.MlflowTracker(client, experiment_id, parent, *objective, sweep_dir=sweep_dir, **track)
    try:  # resuming needs the config beside Ray's state
        save_config(cfg, sweep_dir)
        tracker.save_run_map()
    except OSError as exc:
        tracker.finish(tracking.RunStatus.FAILED)
        raise RunFailure(
            f"run.storage: cannot write {sweep_dir} ({exc.strerror or exc}); free space or fix the path"
        ) from None
    return tracker


def write_spooled(client, spool, sweep_dir: str) -> None:
    """Before a sweep resumes on its runs: write what an earlier session kept in the spool (its runs' last epochs
    and ends), so the store's histories are complete when the tracker reads them."""
    from raytune_suite.track.spool import replay

    pending = len(spool)
    if not pending:
        return
    say(f"writing {pending} MLflow record(s) an earlier session kept in {spool.folder}")
    errors: list[str] = []
    try:
        replay(spool, client, on_error=errors.append)
    except Exception as exc:
        raise RunFailure(
            f"the MLflow store {client.tracking_uri} does not answer ({type(exc).__name__}); the sweep's kept records "
            f"stay in {spool.folder}; start the store, then resume (or: raytune-suite sync {sweep_dir})"
        ) from None
    for error in errors:
        print(f"warning: a kept MLflow record was refused: {error}", file=sys.stderr)


def fit_stages(cfg: ExperimentConfig, sweep_dir: str, tracker, trainable, resume: bool, grow_to: int | None):
    """Tune's fits for this command: the sweep (new, or its latest stage resumed), then, when `grow_to` asks for more
    trials than it plans, a growth (grow.py). Returns the last stage and its results; raises KeyboardInterrupt
    when a fit was stopped (Tune returns normally after SIGINT)."""
    from raytune_suite.run import grow

    stage = grow.latest_stage(cfg, sweep_dir) if resume else grow.first_stage(cfg)
    growing = grow_to is not None and grow_to > stage.record.num_samples
    results = None
    if not (growing and stage.record.complete):  # a complete stage needs no Tuner.restore (it retries failures)
        results = fit_stage(stage, sweep_dir, tracker, trainable, resume)
        if not stage.began(results):
            results = fit_stage(stage, sweep_dir, tracker, trainable, restore=False)
        finished(stage, results, sweep_dir)
    if growing:
        stage = grow.begin(cfg, sweep_dir, tracker, grow_to)
        results = fit_stage(stage, sweep_dir, tracker, trainable, restore=False)
        finished(stage, results, sweep_dir)
    return stage, results


def fit_stage(stage, sweep_dir: str, tracker, trainable, restore: bool):
    tuner = make_tuner(stage.cfg, sweep_dir, tracker, trainable, restore, searcher=stage.searcher)
    tracker.earlier, tracker.best_params = stage.earlier, stage.best_params
    with fit_signals():
        results = tuner.fit()
    if tracker.interrupted:
        raise KeyboardInterrupt
    return results


def finished(stage, results, sweep_dir: str) -> None:
    """Every trial of the stage ended (else the sweep was interrupted): recorded, so a growth starts at once."""
    from raytune_suite.run.grow import mark_complete

    if len(results) < stage.trials:
        raise KeyboardInterrupt
    mark_complete(sweep_dir, stage)


def make_tuner(cfg: ExperimentConfig, sweep_dir: str, tracker, trainable, resume: bool, searcher=None):
    """A new Tuner, or the restored one when Ray saved the sweep's state (a driver killed before that: a new
    Tuner on the same folder and runs). `searcher`: a grown sweep's (grow.py)."""
    from raytune_suite.run.progress import ProgressPrinter
    from raytune_suite.run.tuner import build_tuner, restore_tuner

    kind = kind_of(cfg)
    # A resumed (or grown) sweep's trials so far, as MLflow holds them: the progress lines go on from their bests.
    earlier = {tid: (r.best, r.best_epoch) for tid, r in getattr(tracker, "records", {}).items()
               if r.best is not None and not r.diverged}  # fmt: skip
    progress = ProgressPrinter(cfg.objective, total_trials(cfg), kind.max_steps(cfg), step=kind.step, earlier=earlier)
    callbacks = [tracker, progress, OnFirstResult(prepare_publishing, kind)]
    if resume and files.exists(files.join(sweep_dir, "tuner.pkl")):
        return restore_tuner(cfg, sweep_dir, callbacks=callbacks, trainable=trainable)
    if resume:
        print(f"note: {sweep_dir} holds no Ray state (its driver stopped before the first trial); "
              "starting the sweep on the same MLflow parent run", file=sys.stderr)  # fmt: skip
    return build_tuner(
        cfg,
        storage_path=sweep_dir.rstrip("/").rsplit("/", 1)[0],
        name=sweep_name(sweep_dir),
        callbacks=callbacks,
        trainable=trainable,
        searcher=searcher,
    )


def end_runs(tracker, status: str) -> None:
    """On the way out of a failed or interrupted sweep: end every open run; never mask the original exit. A stop
    waits at most `tracking.STOP_SETTLE_S` for the store: what it has not taken by then is spooled."""
    if tracker is None:
        return
    try:
        from mlflow.entities import RunStatus

        from raytune_suite.track.tracking import STOP_SETTLE_S

        if status == "KILLED":
            tracker.settle_s = STOP_SETTLE_S
        tracker.finish(RunStatus.from_string(status))
    except BaseException as exc:
        print(f"warning: could not end every MLflow run: {type(exc).__name__}: {exc}", file=sys.stderr)


# -- resume ----------------------------------------------------------------------------------------------------
def ray_shape(address: str | None) -> str:
    """`local instance: 2 CPUs` or `joined auto: 4 CPUs, 1 GPU`: what the sweep's trials share."""
    import ray

    try:
        resources = ray.cluster_resources()
    except Exception:  # a Ray Client connection may not say
        return "joined" if address else "local instance"
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    shape = f"{cpus:g} CPU{'s' if cpus != 1 else ''}" + (f", {gpus:g} GPU{'s' if gpus != 1 else ''}" if gpus else "")
    return f"joined {address}: {shape}" if address else f"local instance: {shape}"


# -- signals ---------------------------------------------------------------------------------------------------
_on_stop_request: list = []  # what to do when a SIGTERM asks the sweep to stop (arm the deadline of a running fit)


class StopDeadline:
    """The longest a stop may take: `STOP_DEADLINE_S` after it is armed (the first stop request) the process ends
    with exit 130, whatever it still waits on, after its `last_words` (spool what is queued for MLflow, print the
    resume command)."""

    def __init__(self) -> None:
        self.timer: threading.Timer | None = None
        self.last_words: list = []

    def arm(self, seconds: float = STOP_DEADLINE_S) -> None:
        if self.timer is None:
            self.timer = threading.Timer(seconds, self.fire)
            self.timer.daemon = True
            self.timer.start()

    def disarm(self) -> None:
        """The stop is over (`run_sweep` returned or raised): a program that called it lives on (a notebook, the
        tests); the CLI's own `exit_within` bounds the rest of its exit."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def fire(self) -> None:
        print(f"stop: still busy {STOP_DEADLINE_S:.0f} s after the stop request; ending now", file=sys.stderr)
        for words in self.last_words:
            with contextlib.suppress(BaseException):
                words()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)


_deadline = StopDeadline()


def as_sigint(signum, frame) -> None:
    """Run whatever handles SIGINT now (Tune's graceful stop inside `fit`, else KeyboardInterrupt).

    Calling it directly, not re-raising SIGINT: a process started in the background inherits SIGINT ignored.
    """
    _deadline.arm()
    for react in list(_on_stop_request):
        react()
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


@contextlib.contextmanager
def stops_held_until_ray_is_up(grace_s: float = START_GRACE_S):
    """Around `ray.init`: a SIGTERM or Ctrl-C is held until Ray is up, then raised as KeyboardInterrupt.

    Why: an exception raised at an arbitrary point of `ray.init` can leave node processes that `ray.shutdown`
    does not know of and a driver that then never exits (seen in CI: still alive 240 s after SIGTERM). `ray.init`
    would also swap in its own SIGTERM handler (`sys.exit`), so that is kept out for the duration. A second request,
    or `grace_s` without Ray up, cuts `ray.init` short after all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from raytune_suite.run import ray_compat

    requested = threading.Event()
    # A real signal to the main thread, not _thread.interrupt_main: that one waits for a blocking call to return.
    main = threading.main_thread().ident
    deadline = threading.Timer(grace_s, signal.pthread_kill, (main, signal.SIGINT))
    deadline.daemon = True

    def hold(signum, frame) -> None:
        _deadline.arm()
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        deadline.start()
        print("stop requested: stopping as soon as Ray has started (again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGTERM, hold), signal.signal(signal.SIGINT, hold)
    try:
        with ray_compat.sigterm_handler_left_alone():
            yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        deadline.cancel()
    if requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def fit_signals(grace_s: float = STOP_GRACE_S):
    """Around Tune's `fit`: once a SIGTERM asked it to stop, give it `grace_s`, then interrupt the main thread as a
    second Ctrl-C would (Tune has by then put the default SIGINT handler back: KeyboardInterrupt). Afterwards the
    SIGINT handler from before is put back: Tune leaves its own installed, which would swallow a later Ctrl-C."""
    timer = threading.Timer(grace_s, _thread.interrupt_main)
    timer.daemon = True

    def arm() -> None:
        if not timer.is_alive() and not timer.finished.is_set():
            timer.start()

    main = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main else None
    _on_stop_request.append(arm)
    try:
        yield
    finally:
        _on_stop_request.remove(arm)
        timer.cancel()
        if main:
            signal.signal(signal.SIGINT, sigint)
