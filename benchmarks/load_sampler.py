"""The machine's load while a benchmark runs, so that figures measured next to other work say so."""

from __future__ import annotations

import contextlib
import os
import threading


@contextlib.contextmanager
def sampled_load(every_s: float = 5.0):
    """Yields a list that holds the 1-minute load average at the start and every `every_s` until the block ends."""
    loads = [os.getloadavg()[0]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    try:
        yield loads
    finally:
        done.set()
