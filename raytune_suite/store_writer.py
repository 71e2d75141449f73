"""`QueuedClient`: an MlflowClient whose writes run on one background thread, in order.

Tune calls its callbacks on the driver's event loop, and while a callback runs no trial's result is processed, so
trials wait. A SQLite or HTTP write costs ~10 ms, and ending a run ~90 ms: done inline, a 40-trial sweep pays
seconds of idle CPUs. MLflow's own async logging is no cure here: each flush waits ~1.4 s for its batching
interval. Queued writes cost the loop microseconds; `drain()` waits for them before anything reads the store.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from mlflow import MlflowClient

from raytune_suite.errors import RunFailure

log = logging.getLogger(__name__)
# Calls that return something the caller needs now stay synchronous.
SYNCHRONOUS = {"create_run", "get_run", "search_runs", "get_experiment_by_name", "create_experiment",
               "list_artifacts", "get_metric_history", "download_artifacts"}  # fmt: skip


class QueuedClient:
    """Proxy for `MlflowClient`: reads and `create_run` are synchronous, every other call is queued."""

    def __init__(self, client: MlflowClient):
        self.client = client
        self._queue: queue.Queue | None = None
        self._errors: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name in SYNCHRONOUS or not callable(method):
            return method
        return lambda *args, **kwargs: self._put((name, method, args, kwargs))

    def _put(self, item) -> None:
        if self._queue is None:
            self._queue = queue.Queue()
            threading.Thread(target=self._work, args=(self._queue,), name="mlflow-writer", daemon=True).start()
        self._queue.put(item)

    def _work(self, q: queue.Queue) -> None:
        while True:
            name, method, args, kwargs = q.get()
            try:
                method(*args, **kwargs)
            except Exception as exc:  # keep writing the rest; drain() reports what was lost
                self._errors.append(f"{name}: {exc}")
                log.warning("MLflow %s failed: %s", name, exc)
            finally:
                q.task_done()

    def drain(self) -> None:
        """Wait until every queued write is done; raise if any failed, so no lost record goes unnoticed."""
        if self._queue is not None:
            self._queue.join()
        if self._errors:
            errors, self._errors = self._errors, []
            raise RunFailure(f"{len(errors)} MLflow write(s) failed; first: {errors[0]}")

    # Tune pickles callbacks with its experiment state: ship the client, not the thread.
    def __getstate__(self) -> dict:
        return {"client": self.client, "_queue": None, "_errors": []}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
