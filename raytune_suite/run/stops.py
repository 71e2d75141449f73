"""A stop request (SIGTERM) that lands while the command imports a module is raised once the import is done.

Raised at an arbitrary point of an import, the stop's KeyboardInterrupt can cross C++ frames that do not expect
it (`import torch`: the process aborted, SIGABRT, 2 stops in 20 at 0.9 s into `run` here) or importlib's own
bookkeeping, which then leaves a module lock held: the command went on as if never stopped and hung for good on
that lock in its next import (seen once in 80 stops). So a stop inside an import is held: within `stops_held()`
it is raised at the block's end; elsewhere the signal is sent again shortly, until it lands outside any import.
"""

from __future__ import annotations

import contextlib
import os
import threading

RETRY_S = 0.1  # how soon a stop held by an import is tried again
IMPORTING = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")

# Only the main thread runs Python signal handlers, and only it imports an experiment during the checks.
_state = {"holding": 0, "pending": False}


def request_stop(signum, frame) -> None:
    """The command's SIGTERM handler: a stop is a KeyboardInterrupt (exit 130), unless an import holds it."""
    if _state["holding"]:
        _state["pending"] = True
        return
    if importing(frame):
        retry = threading.Timer(RETRY_S, os.kill, (os.getpid(), signum))
        retry.daemon = True
        retry.start()
        return
    raise KeyboardInterrupt


def importing(frame) -> bool:
    """Whether `frame` runs inside an import (importlib's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename in IMPORTING:
            return True
        frame = frame.f_back
    return False


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
