"""A stop request (SIGTERM) while the command imports an extension module is held until the import is done.

Raised at an arbitrary point of `import torch` (Python code that torch's C++ initialisation runs), the stop's
KeyboardInterrupt crosses C++ frames that do not expect it and the process aborts (SIGABRT, a core and no resume
line): 2 stops in 20 at 0.9 s into `run` here. Held, it is raised as soon as the import returns.
"""

from __future__ import annotations

import contextlib

# Only the main thread runs Python signal handlers, and only it imports an experiment during the checks.
_state = {"holding": 0, "pending": False}


def request_stop(signum, frame) -> None:
    """The command's SIGTERM handler: a stop is a KeyboardInterrupt (exit 130), unless an import holds it."""
    if _state["holding"]:
        _state["pending"] = True
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def stops_held():
    """Hold a stop request for the block; raise it at the block's end."""
    _state["holding"] += 1
    try:
        yield
    finally:
        _state["holding"] -= 1
    if not _state["holding"] and _state["pending"]:
        _state["pending"] = False
        raise KeyboardInterrupt
