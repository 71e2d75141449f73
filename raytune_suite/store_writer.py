"""`QueuedClient`: an MlflowClient whose writes run on one background thread, in order.

Tune calls its callbacks on the driver's event loop, and while a callback runs no trial's result is processed, so
trials wait. A SQLite or HTTP write costs ~10 ms, and ending a run ~90 ms: done inline, a 40-trial sweep pays
seconds of idle CPUs. MLflow's own async logging is no cure here: each flush waits ~1.4 s for its batching
interval. Queued writes cost the loop microseconds; `drain()` waits for them before anything reads the store.
`stats` counts what the thread did (calls, seconds busy, the deepest the queue got), for benchmarks and tests.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient

from raytune_suite.errors import RunFailure

log = logging.getLogger(__name__)
# Calls that wait for their turn on the writer thread: reads whose answer the caller needs now, and uploads of
# local files, which the caller may delete as soon as the call returns (a temporary folder of plots).
SYNCHRONOUS = {
    "create_run", "get_run", "search_runs", "get_experiment_by_name", "create_experiment",
    "list_artifacts", "get_metric_history", "download_artifacts", "log_artifact", "log_artifacts",
}  # fmt: skip


@dataclass
class WriterStats:
    """What the writer thread did. Args: calls: calls run (reads and writes); busy_s: seconds spent in them;
    max_backlog: the most calls ever waiting at once, the one being run included."""

    calls: int = 0
    busy_s: float = 0.0
    max_backlog: int = 0


class QueuedClient:
    """Proxy for `MlflowClient` whose calls all run on one writer thread, in the order they were made.

    Writes return at once; reads and `create_run` (whose answer the caller needs) wait for their turn. One thread
    also means the store never sees two writers at once, which SQLite answers with "database is locked".
    """

    def __init__(self, client: MlflowClient):
        self.client = client
        self._queue: queue.Queue | None = None
        self._errors: list[str] = []
        self.stats = WriterStats()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method
        if name in SYNCHRONOUS:
            return lambda *args, **kwargs: self._put(name, method, args, kwargs).result()
        return lambda *args, **kwargs: self._put(name, method, args, kwargs) and None

    def _put(self, name: str, method, args, kwargs) -> Future:
        if self._queue is None:
            self._queue = queue.Queue()
            threading.Thread(target=self._work, args=(self._queue,), name="mlflow-writer", daemon=True).start()
        done: Future = Future()
        self._queue.put((name, method, args, kwargs, done))
        # unfinished_tasks: queued plus the one being run; read without the lock (a benchmark figure, not a control)
        self.stats.max_backlog = max(self.stats.max_backlog, self._queue.unfinished_tasks)
        return done

    def _work(self, q: queue.Queue) -> None:
        while True:
            name, method, args, kwargs, done = q.get()
            started = time.perf_counter()
            try:
                done.set_result(method(*args, **kwargs))
            except Exception as exc:
                done.set_exception(exc)
                if name not in SYNCHRONOUS:  # a caller waiting on a read sees its error; a write's is kept
                    self._errors.append(f"{name}: {exc}")
                    log.warning("MLflow %s failed: %s", name, exc)
            finally:
                self.stats.calls += 1
                self.stats.busy_s += time.perf_counter() - started
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
        return {"client": self.client, "_queue": None, "_errors": [], "stats": WriterStats()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"stats": WriterStats(), **state})  # a state pickled before `stats` existed
