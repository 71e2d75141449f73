"""What the sweep does while Ray starts, so that less of it waits on the critical path before the first trial."""

import json
import subprocess
import sys
import threading
import time

# Tune's `fit()` on its main thread, before the first trial starts: its default loggers (TensorBoard's among them)
# and its census of callback types. Prints the modules these imported.
TUNE_CALLBACK_SETUP = """
import json, sys
{warm}
from ray.air._internal.usage import _count_callbacks
from ray.tune.utils.callback import _create_default_callbacks
before = set(sys.modules)
_count_callbacks(_create_default_callbacks([]))
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def imported_by_tunes_callback_setup(warm: str) -> list[str]:
    code = TUNE_CALLBACK_SETUP.format(warm=warm)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_after_warming_tunes_callback_setup_has_nothing_left_to_import():
    cold = imported_by_tunes_callback_setup("")
    assert "tensorboardX" in cold  # what the warm-up exists for: ~1 s of imports on Tune's main thread
    warmed = imported_by_tunes_callback_setup(
        "from raytune_suite.run.sweep import warm_tune_imports; warm_tune_imports()"
    )
    assert warmed == []


def test_publishing_imports_start_with_the_first_result_not_with_fit():
    """Started with `fit()`, they competed with the trial processes' start-up (first trial 1.2 s later on 2 CPUs)."""
    from raytune_suite.run.sweep import OnFirstResult

    calls: list[tuple[str, threading.Thread]] = []
    done = threading.Event()

    def prepare(kind: str) -> None:
        calls.append((kind, threading.current_thread()))
        done.set()

    callback = OnFirstResult(prepare, "torch")
    callback.on_trial_start(iteration=1, trials=[], trial=None)
    assert not done.wait(0.2)  # a trial started, its process may still be booting: nothing yet
    callback.on_trial_result(iteration=2, trials=[], trial=None, result={"epoch": 1})
    callback.on_trial_result(iteration=3, trials=[], trial=None, result={"epoch": 2})
    assert done.wait(10)
    time.sleep(0.2)  # a second call, if any, would have landed by now
    assert [kind for kind, _ in calls] == ["torch"]
    assert calls[0][1] is not threading.main_thread()  # Tune's loop never waits for the imports
