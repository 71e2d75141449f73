"""The one decision ray_compat.keep_started_actors changes in Ray Tune's controller (the sweep-level effect is
measured in tests/integration/test_worker_loss.py)."""

from types import SimpleNamespace

from ray.tune.execution.tune_controller import TuneController

from raytune_suite.run.ray_compat import keep_started_actors


def controller(started: bool, resetting: bool = False):
    """Just the state the decision reads: the trial's own actor, whether Ray started it, whether it is resetting."""
    trial, actor = object(), object()
    manager = SimpleNamespace(is_actor_started=lambda a: started and a is actor)
    return SimpleNamespace(_trial_to_actor={trial: actor}, _resetting_trials={trial} if resetting else set(),
                           _actor_manager=manager), trial  # fmt: skip


def test_patching_twice_wraps_ray_once():
    keep_started_actors()
    patched = TuneController._maybe_reuse_cached_actor
    keep_started_actors()
    assert TuneController._maybe_reuse_cached_actor is patched


def test_a_trial_whose_own_process_is_starting_does_not_take_a_cached_one():
    keep_started_actors()
    state, trial = controller(started=True)
    assert TuneController._maybe_reuse_cached_actor(state, trial) is False


def test_a_trial_already_resetting_onto_a_cached_actor_keeps_it_as_ray_decides():
    keep_started_actors()
    state, trial = controller(started=True, resetting=True)
    assert TuneController._maybe_reuse_cached_actor(state, trial) is True  # Ray's own first check
