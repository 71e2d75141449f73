"""ray_compat: nothing is patched on import, the patches apply once, only on the Ray they were written for, and
each of them fails here when the Ray code it relies on changes."""

import inspect
import subprocess
import sys

import cloudpickle
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial

from raytune_suite.errors import UserCodeError
from raytune_suite.run import ray_compat


def test_importing_the_suite_patches_nothing():
    code = "; ".join([
        "import raytune_suite.run.tuner, raytune_suite.run.sweep, raytune_suite.cli",
        "from ray.tune.experiment import Trial",
        "from ray.tune.execution.tune_controller import TuneController",
        "print(hasattr(Trial.should_recover, '_raytune_suite_patched'),"
        " hasattr(TuneController._maybe_reuse_cached_actor, '_raytune_suite_patched'))",
    ])  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_patches_apply_only_on_the_ray_line_they_were_written_for(monkeypatch, capsys):
    assert ray_compat.supported("2.60.0") and not ray_compat.supported("2.61.0")
    monkeypatch.setattr(ray_compat, "supported", lambda version=None: False)
    monkeypatch.setattr(ray_compat, "_warned", [])
    assert ray_compat.apply() is False
    assert ray_compat.apply() is False
    assert capsys.readouterr().err.count("Ray workarounds are for Ray 2.60.x") == 1


def test_rays_controller_still_asks_should_recover_before_retrying_a_failed_trial():
    """retry_only_infrastructure_failures wraps Trial.should_recover: it works only while Ray asks it."""
    assert "should_recover()" in inspect.getsource(TuneController._process_trial_failure)


def test_rays_controller_still_has_the_reuse_decision_keep_started_actors_replaces():
    source = inspect.getsource(TuneController._maybe_add_actors)
    assert "_maybe_reuse_cached_actor(trial" in source
    assert list(inspect.signature(TuneController._maybe_reuse_cached_actor).parameters)[:2] == ["self", "trial"]


def test_a_trial_whose_experiment_code_failed_is_not_retried_but_a_lost_worker_is(tmp_path):
    from types import SimpleNamespace

    ray_compat.retry_only_infrastructure_failures()

    class Failed(Exception):  # how Ray pickles a trial's error: an exception whose `cause` is what the trainable raised
        def __init__(self, cause):
            super().__init__(str(cause))
            self.cause = cause

    for cause, retried in [(UserCodeError("ValueError", "boom", "exp.py:3 in forward"), False),
                           (RuntimeError("the node died"), True)]:  # fmt: skip
        path = tmp_path / f"{retried}.pkl"
        path.write_bytes(cloudpickle.dumps(Failed(cause)))
        # what Trial.should_recover reads: its failures so far, its limit, and (patched) its last pickled error
        trial = SimpleNamespace(run_metadata=SimpleNamespace(num_failures=1), max_failures=2,
                                pickled_error_file=str(path))  # fmt: skip
        assert Trial.should_recover(trial) is retried


def test_the_private_reads_still_find_what_they_read_in_this_ray():
    """autoscaler_status, gcs_cluster_config and readonly_node_type_prefix read Ray internals: fail here first."""
    from ray._private import ray_constants
    from ray._private.state import state
    from ray.experimental.internal_kv import _internal_kv_get

    assert isinstance(ray_constants.DEBUG_AUTOSCALING_STATUS, str) and callable(_internal_kv_get)
    assert callable(state.get_cluster_config)
    assert ray_compat.readonly_node_type_prefix()  # a non-empty name prefix
    assert "_local_tuner" in inspect.getsource(__import__("ray.tune", fromlist=["Tuner"]).Tuner.__init__)


def test_ray_init_cannot_replace_the_drivers_sigterm_handler_inside_the_block_and_can_after():
    import ray._private.utils as ray_utils

    original = ray_utils.set_sigterm_handler
    with ray_compat.sigterm_handler_left_alone():
        assert ray_utils.set_sigterm_handler is not original
        assert ray_utils.set_sigterm_handler(lambda *a: None) is None  # a no-op: nothing installed
    assert ray_utils.set_sigterm_handler is original
    assert "sigterm" in inspect.getsource(original).lower()  # the setter ray.init calls is still this one


def test_the_driver_can_switch_off_rays_failure_signal_handler():
    from ray._private import ray_constants

    before = ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER
    try:
        assert ray_compat.driver_keeps_its_signal_handlers() is True
        assert ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER is True
    finally:
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = before
