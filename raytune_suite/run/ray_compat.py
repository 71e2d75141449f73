"""Where the suite works around Ray Tune 2.60, in one place. Nothing here runs on import: `apply()` is called by
`sweep.run_sweep` (so by `run`, `--resume`, a growth, and a driver `submit` starts on the cluster), and checks the
installed Ray first: on another version the patches are skipped with one warning, and the sweep behaves as Ray's
own (the two behaviours below are then Ray's). Each has a test that fails when the Ray code it relies on changes
(tests/unit/test_ray_compat.py, test_actor_reuse.py) and a short upstream report in docs/upstream.md.

Patches:
- `keep_started_actors`: with `reuse_actors=True`, Ray hands a finished trial's process to a waiting trial even
  when that trial's own process is already starting, and stops the starting one ("Removing ORIGINAL ACTOR"). When
  a process starts slower than a trial runs (Python + torch + data: seconds), every later trial does the same, so a
  sweep that lost a worker never gets a second warm process back and runs one trial at a time (measured: 11 of 12
  trials in sequence after one worker was SIGKILLed; with the patch the replacement ran trials ~15 s after the
  kill). A trial whose own actor has started now waits for it; requests Ray has not placed are still cancelled in
  favour of a cached actor, as Ray intends.
- `retry_only_infrastructure_failures`: Ray retries every failed trial up to `max_failures`. A trial whose
  experiment code raised (the trainable's `UserCodeError`) would fail the same way again, after minutes and
  tracebacks, so it is final; lost workers and nodes are still retried. Ray has no setting for this, so
  `Trial.should_recover` asks first whether the trial's last error was the experiment's.

- `sigterm_handler_left_alone`: `ray.init` installs its own SIGTERM handler (`sys.exit`) in the driver; while the
  sweep holds a stop until Ray is up (sweep.stops_held_until_ray_is_up), Ray's setter is a no-op.
- `driver_keeps_its_signal_handlers`: Ray's C++ core would install absl's failure signal handler in the driver,
  SIGTERM included, and `ray.shutdown()` then puts SIGTERM back to the default action beneath Python: a stop while
  publishing (Ray is shut down meanwhile) killed the driver outright, every run left RUNNING. Ray reads the switch
  from its constants module when a worker starts (the environment variable is read once, at import, and would
  reach every trial worker too); trial workers keep Ray's handlers.

Private reads (Ray 2.60 has no public API for them; on another Ray they answer "cannot tell"):
- `set_restored_callbacks`: `Tuner.restore` brings back the RunConfig Ray pickled at the sweep's start, callbacks
  included: stale copies this driver cannot see. The live ones replace them through `Tuner._local_tuner`.
- `autoscaler_status`, `gcs_cluster_config`, `readonly_node_type_prefix`: the cluster's shape the default
  concurrency counts (concurrency.py): the autoscaler's status in the GCS key-value store, the node groups an
  autoscaler published, the name prefix of a cluster without one.
"""

from __future__ import annotations

import contextlib
import os
import sys

SUPPORTED = "2.60."  # the Ray release line these patches were written and tested against
_PATCHED = "_raytune_suite_patched"
_warned: list[str] = []


def supported(version: str | None = None) -> bool:
    import ray

    return (version or ray.__version__).startswith(SUPPORTED)


def apply() -> bool:
    """Apply every patch (idempotent); False, with one warning per process, on a Ray these were not written for."""
    import ray

    if not supported():
        if not _warned:
            _warned.append(ray.__version__)
            print(f"warning: raytune_suite's Ray workarounds are for Ray {SUPPORTED}x, not {ray.__version__}: "
                  "skipped (actor reuse after a lost worker and retries of failing experiment code are Ray's own)",
                  file=sys.stderr)  # fmt: skip
        return False
    keep_started_actors()
    retry_only_infrastructure_failures()
    return True


@contextlib.contextmanager
def sigterm_handler_left_alone():
    """For the block, `ray.init` does not replace the driver's SIGTERM handler (see the module docstring)."""
    try:
        import ray._private.utils as ray_utils

        original = ray_utils.set_sigterm_handler
    except (ImportError, AttributeError):  # another Ray: its own behaviour
        yield
        return
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = original


def driver_keeps_its_signal_handlers() -> bool:
    """Before `ray.init` in the driver: no absl failure signal handler (see the module docstring). False where this
    Ray has no such switch."""
    try:
        from ray._private import ray_constants
    except ImportError:
        return False
    if not hasattr(ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"):
        return False
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    return True


def keep_started_actors() -> None:
    """Patch Ray Tune's controller (process-wide, idempotent) so that started actors are never thrown away."""
    from ray.tune.execution.tune_controller import TuneController

    original = TuneController._maybe_reuse_cached_actor
    if getattr(original, _PATCHED, False):
        return

    def _maybe_reuse_cached_actor(self: TuneController, trial) -> bool:
        own = self._trial_to_actor.get(trial)
        if own is not None and trial not in self._resetting_trials and self._actor_manager.is_actor_started(own):
            return False  # its own process is booting: stopping it would cost the sweep a worker for good
        return original(self, trial)

    setattr(_maybe_reuse_cached_actor, _PATCHED, True)
    TuneController._maybe_reuse_cached_actor = _maybe_reuse_cached_actor


def retry_only_infrastructure_failures() -> None:
    """Wrap `Trial.should_recover` (process-wide, idempotent): a trial whose last error is the experiment's own
    (`UserCodeError`) is not retried."""
    from ray.tune.experiment import Trial

    if getattr(Trial.should_recover, _PATCHED, False):
        return
    original = Trial.should_recover

    def should_recover(self) -> bool:
        return original(self) and not last_error_is_user_code(self)

    setattr(should_recover, _PATCHED, True)
    Trial.should_recover = should_recover


def last_error_is_user_code(trial) -> bool:
    """The error Ray pickled for this trial's last failure (just now, on the driver) is a `UserCodeError`."""
    import cloudpickle

    from raytune_suite.errors import UserCodeError

    path = trial.pickled_error_file
    if not path or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as handle:
            error = cloudpickle.load(handle)
    except Exception:
        return False
    return isinstance(getattr(error, "cause", None), UserCodeError)


def set_restored_callbacks(tuner, callbacks: list) -> bool:
    """Give a restored `Tuner` the live callbacks; False where Ray keeps the tuner out of reach (Ray Client)."""
    local = tuner._local_tuner
    if local is None:  # ray:// keeps the tuner on the cluster
        return False
    local.get_run_config().callbacks = list(callbacks)
    return True


def autoscaler_status() -> dict | None:
    """The head's autoscaler status (the v1 monitor's JSON in the GCS key-value store); None: cannot tell."""
    import json

    if not supported():
        return None
    try:
        from ray._private import ray_constants
        from ray.experimental.internal_kv import _internal_kv_get

        raw = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
        return json.loads(raw) if raw else None
    except Exception:  # an old head or a Ray Client connection without KV access
        return None


def gcs_cluster_config():
    """The cluster config an autoscaler published in the GCS (its node groups); None: none, or cannot tell."""
    if not supported():
        return None
    try:
        import ray._private.state

        return ray._private.state.state.get_cluster_config()
    except Exception:
        return None


def readonly_node_type_prefix() -> str:
    """The prefix of the node types a cluster without an autoscaling config reports (nothing can be added)."""
    from ray.autoscaler._private.util import format_readonly_node_type

    return format_readonly_node_type("")
