"""What the sweep does while Ray starts, so that less of it waits on the critical path before the first trial."""

import json
import subprocess
import sys

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
    warmed = imported_by_tunes_callback_setup("from raytune_suite.sweep import warm_tune_imports; warm_tune_imports()")
    assert warmed == []
