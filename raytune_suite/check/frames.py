"""Where in the experiment's own code an error arose: the one line the smoke check (`smoke.py`) and a failing trial
(`trainable.experiment_code`, `estimators.py`) name, `file:line in function`, never a frame of torch or the suite.
"""

from __future__ import annotations

import functools
import inspect
import sys
import sysconfig
import traceback
from pathlib import Path

from raytune_suite.errors import data_hint, one_line


def defined_at(experiment, name: str) -> str:
    """`file:line in name` where the experiment's function `name` is defined (else the module and the name)."""
    function = getattr(experiment.module, name, None)
    code = getattr(inspect.unwrap(function), "__code__", None) if callable(function) else None
    if code is None:
        return f"{experiment.ref} {name}"
    return f"{code.co_filename}:{code.co_firstlineno} in {name}"


@functools.cache
def _library_folders() -> tuple[Path, ...]:
    """Where code that is not the user's lives: Python's own, the installed packages', the suite's."""
    paths = sysconfig.get_paths()
    folders = {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return (*folders, Path(__file__).resolve().parents[1])  # the suite's own package


def is_experiment_code(filename: str, module_file: str | None) -> bool:
    """A frame of the experiment's own code: its module, or any file outside the libraries' folders (a helper
    module beside it, an experiment it borrows from); never `<frozen ...>` or `<string>`."""
    if filename.startswith("<") or not Path(filename).is_absolute():  # <frozen ...>, a Cython module's .pyx
        return False
    path = Path(filename).resolve()
    if module_file and path == Path(module_file).resolve():
        return True
    return not any(path.is_relative_to(folder) for folder in _library_folders())


def user_frame(experiment, tb, function: str | None = None) -> str:
    """`file:line in function` of the innermost frame of the experiment's own code (`is_experiment_code`).

    Without one (an `nn.Sequential` that build_model returned raised inside torch), the experiment function that
    made what failed, as defined, with the frame that raised in parentheses: load_data where the failure's message
    says the data was wrong (`data_hint`), else `function` (default: build_model, or build_estimator). Called while
    the failure is handled (an `except` block or `__exit__`), so `sys.exc_info()` holds it.
    """
    frames = traceback.extract_tb(tb)
    source = getattr(experiment.module, "__file__", None)
    own = [f for f in frames if is_experiment_code(f.filename, source)]
    if own:
        frame = own[-1]
        return f"{frame.filename}:{frame.lineno} in {frame.name}"
    failure = sys.exc_info()[1]
    if failure is not None and data_hint(one_line(failure)):
        function = "load_data"
    builder = "build_estimator" if experiment.kind == "estimator" else "build_model"
    named = next((f for f in (function, builder) if f and hasattr(experiment.module, f)), None)
    at = defined_at(experiment, named) if named else experiment.ref
    if not frames:
        return at
    last = frames[-1]
    return f"{at} (raised at {last.filename}:{last.lineno} in {last.name})"
