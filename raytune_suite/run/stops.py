"""A stop request (SIGTERM) that lands while the command imports a module is raised once the import is done.

Raised at an arbitrary point of an import, the stop's KeyboardInterrupt can cross C++ frames that do not expect
it (`import torch`: the process aborted, SIGABRT, 2 stops in 20 at 0.9 s into `run` here) or importlib's own
bookkeeping, which then leaves a module lock held: the command went on as if never stopped and hung for good on
that lock in its next import (seen once in 80 stops). So a stop inside an import, or inside `stops_held()`, is held:
the signal is sent again every `RETRY_S` until it lands outside (or the block ends and raises it), and an import
that does not return within `HOLD_LIMIT_S` is interrupted after all, so a stop still ends a command whose import
hangs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

RETRY_S = 0.1  # how soon a held stop is tried again
HOLD_LIMIT_S = 5.0  # the longest a stop is held (importing torch takes ~1.6 s here)
IMPORTING = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")

# Only the main thread runs Python signal handlers, and only it imports an experiment during the checks.
_state: dict = {"holding": 0, "pending": False, "since": None}


def request_stop(signum, frame) -> None:
    """The command's SIGTERM handler: a stop is a KeyboardInterrupt (exit 130), held while an import runs."""
    since = _state["since"] or time.monotonic()
    if (_state["holding"] or importing(frame)) and time.monotonic() - since < HOLD_LIMIT_S:
        _state["pending"], _state["since"] = True, since
        retry = threading.Timer(RETRY_S, _send_again, (signum,))
        retry.daemon = True
        retry.start()
        return
    _settled()
    raise KeyboardInterrupt


def _send_again(signum) -> None:
    if _state["pending"]:  # not raised meanwhile (at the end of a `stops_held` block)
        os.kill(os.getpid(), signum)


def _settled() -> None:
    _state["pending"], _state["since"] = False, None


def importing(frame) -> bool:
    """Whether `frame` runs inside an import (importlib's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename in IMPORTING:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def stops_held():
    """Hold a stop request for the block (at most `HOLD_LIMIT_S`); raise it at the block's end."""
    _state["holding"] += 1
    try:
        yield
    finally:
        _state["holding"] -= 1
    if not _state["holding"] and _state["pending"]:
        _settled()
        raise KeyboardInterrupt
