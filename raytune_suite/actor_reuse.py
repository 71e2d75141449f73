"""Actor reuse that survives a lost worker: a trial keeps the process Ray already started for it.

With `TuneConfig(reuse_actors=True)` Ray Tune 2.60 hands a finished trial's process (a *cached* actor) to a waiting
trial. If that waiting trial already has a process of its own that Ray has started and that is still booting,
`TuneController._maybe_reuse_cached_actor` stops the booting one ("Removing ORIGINAL ACTOR", a new actor that exits
right after creation in the raylet log). When a booting process (Python + torch + data: seconds) takes longer than a
trial, this repeats for every later trial: once a worker is lost the sweep never gets a second warm process back and
runs one trial at a time while the replacement's CPU is reserved and idle. Measured on 2 busy CPUs, the suite's
own trainable (digits CNN, 12 trials of ~3 s, one worker SIGKILLed): the 11 other trials ran one after another on
the surviving process; with this fix the replacement ran trials beside it ~15 s after the kill (its start-up).

The fix keeps Ray's reuse for everything else and changes one decision: a trial whose own actor has already been
started (resources acquired, process created) waits for it instead of taking the cached actor; the cached actor
goes to the next trial that has none (the searcher proposes one as soon as the finished trial frees its slot).
Requests that Ray has not placed yet are still cancelled in favour of a cached actor, as Ray intends (so a sweep on
an autoscaling cluster does not wait for new nodes when a warm process is free).
"""

from __future__ import annotations

from ray.tune.execution.tune_controller import TuneController

_PATCHED = "_raytune_suite_keeps_started_actors"


def keep_started_actors() -> None:
    """Patch Ray Tune's controller (process-wide, idempotent) so that started actors are never thrown away."""
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
