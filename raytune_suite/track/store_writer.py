"""`QueuedClient`: an MlflowClient whose calls run on one background thread, in order, each with a deadline; while
the tracking store does not answer, its writes go to the sweep's spool (spool.py) and are replayed when it does.

Why a thread: Tune calls its callbacks on the driver's event loop, and while a callback runs no trial's result is
processed, so trials wait. A SQLite or HTTP write costs ~10 ms, and ending a run ~90 ms: done inline, a 40-trial
sweep pays seconds of idle CPUs. MLflow's own async logging is no cure here: each flush waits ~1.4 s for its batching
interval. Queued writes cost the loop microseconds; `drain()` waits for them before anything reads the store.
`stats` counts what the thread did (calls, seconds busy, the deepest the queue got), for benchmarks and tests.

Why deadlines: MLflow's HTTP client retries a dead server with back-off for minutes, and a caller waiting on it froze
the sweep: a trial start waited for its run's id for ever, and no stop could break the wait (a thread blocked on
`Future.result()` ignores `_thread.interrupt_main`). So each HTTP request is bounded (`HTTP_DEADLINES`; a user's own
environment wins), a trial start waits at most `CREATE_WAIT_S` for its run's id and then goes on with a spooled id,
a read at most `READ_WAIT_S`, and `drain` takes a timeout after which what is still queued is spooled (`abandon`).

Outages: a call that fails because the store is not there (`spool.unreachable`) turns the client *down*: the console
says so once, with the spool's folder; from then on writes are journalled in the spool (fsync'd) and reads fail at
once (`StoreUnavailable`); every `PROBE_EVERY_S` the thread asks the store whether it answers, and when it does it
replays the spool in order, says so, and carries on with the queue. A call that fails for a reason of its own (a
param MLflow refuses to change) is kept in `_errors` and raised by `drain`, as before: no write is lost unnoticed.
Without a spool (`spool_to` never called) an outage's writes are errors too.
"""

from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient

from raytune_suite.errors import RunFailure
from raytune_suite.track.spool import RUN_KEY_TAG, UPLOADS, Spool, Write, answers, apply_write, new_run_key, replay
from raytune_suite.track.spool import unreachable as store_unreachable

log = logging.getLogger(__name__)
# Calls that wait for their turn on the writer thread: reads whose answer the caller needs now, and uploads of
# local files, which the caller may delete as soon as the call returns (a temporary folder of plots).
SYNCHRONOUS = {
    "create_run", "get_run", "search_runs", "get_experiment_by_name", "create_experiment",
    "list_artifacts", "get_metric_history", "download_artifacts", "log_artifact", "log_artifacts",
}  # fmt: skip
READS = SYNCHRONOUS - {"create_run", "create_experiment", *UPLOADS}
# MLflow's HTTP client by default retries 7 times with back-off factor 2 and waits 120 s per attempt: minutes per
# call against a dead server. These bound one call to ~2 s against a refused port and ~92 s against one that never
# answers (3 attempts of 30 s, 2 s of back-off; 30 s leaves a server time to store a large model it was sent).
# Callers never wait that long (their own deadlines below). Set with `os.environ.setdefault`: a user's settings win.
HTTP_DEADLINES = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
}
# Seconds a trial start waits for its run's id before it goes on with a spooled one (Tune's loop waits meanwhile).
CREATE_WAIT_S = 5.0
# Seconds a read waits for its answer (its turn on the thread included); uploads: a model may be large.
READ_WAIT_S = 60.0
UPLOAD_WAIT_S = 600.0
# While the store is down, seconds between the thread's questions whether it answers again.
PROBE_EVERY_S = 5.0
# What `drain` waits by default before it spools what is still queued.
DRAIN_S = 60.0
_REPLAY = "__replay__"  # a queue item asking the thread to try the store and replay the spool now


class StoreUnavailable(RuntimeError):
    """The tracking store did not answer: a read while it is down, or a call past its deadline."""


@dataclass
class PendingRun:
    """What `create_run` returns for a run the store has not created yet: its spooled id as `run.info.run_id`."""

    run_id: str

    @property
    def info(self) -> PendingRun:
        return self


@dataclass
class WriterStats:
    """What the writer thread did. Args: calls: calls run (reads and writes); busy_s: seconds spent in them;
    max_backlog: the most calls ever waiting at once, the one being run included."""

    calls: int = 0
    busy_s: float = 0.0
    max_backlog: int = 0


def now_ms() -> int:
    return int(time.time() * 1000)


def short_reason(exc: BaseException) -> str:
    """`[Errno 111] Connection refused` (or `Connection broken: ...`, a server killed mid-answer) out of MLflow's
    paragraph about a failed request; else its first line."""
    text = str(exc)
    errno, dropped = r"\[Errno -?\d+\] [^'\")\]]+", r"Connection (?:broken|aborted|reset)[^'\"]*"
    found = re.search(errno, text) or re.search(dropped, text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    return (text.splitlines() or [type(exc).__name__])[0][:160]


class QueuedClient:
    """Proxy for `MlflowClient` whose calls all run on one writer thread, in the order they were made.

    Writes return at once; reads, uploads and `create_run` (whose answer the caller needs) wait for their turn, each
    within its deadline. One thread also means the store never sees two writers at once, which SQLite answers with
    "database is locked". `spool_to` gives it the sweep's spool, for outages.
    """

    def __init__(self, client: MlflowClient):
        self.client = client
        self._queue: queue.Queue | None = None
        self._errors: list[str] = []
        self.stats = WriterStats()
        self._lock = threading.RLock()
        self.spool: Spool | None = None
        self.sweep_dir: str | None = None
        self.ids: dict[str, str] = {}  # spooled run id -> the store's, once it created the run
        self.down_since: float | None = None  # time.monotonic() of the failed call that began an outage
        self.outage_s: list[float] = []  # how long each ended outage lasted
        self.replayed = 0  # writes replayed from the spool
        self._next_probe = 0.0
        self._abandoned = False  # a stop could not wait: everything from now on goes to the spool
        self._current: tuple | None = None  # the item the thread is running

    def spool_to(self, spool: Spool, sweep_dir: str) -> None:
        """Keep what the store cannot take in `spool` (the sweep's, `sweep_dir`'s) and replay it from there."""
        with self._lock:
            self.spool, self.sweep_dir = spool, sweep_dir
            spool.ids.update(self.ids)
            self.ids = spool.ids

    @property
    def down(self) -> bool:
        """The store is not taking writes now: they go to the spool."""
        return self.down_since is not None or self._abandoned

    @property
    def spooled(self) -> int:
        """Writes in the spool, not in the store yet."""
        return len(self.spool) if self.spool is not None else 0

    def resolve(self, run_id: str) -> str:
        """The store's id of a run (a spooled id the store has created since, translated)."""
        return self.ids.get(run_id, run_id)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method
        if name in UPLOADS:  # the path by position: the spool copies the files it names
            return lambda run_id, path, *rest: self._wait(self._put(name, (run_id, path, *rest), {}), UPLOAD_WAIT_S)
        if name in SYNCHRONOUS:
            return lambda *args, **kwargs: self._wait(self._put(name, args, kwargs), READ_WAIT_S)
        return lambda *args, **kwargs: self._put(name, args, kwargs) and None

    def create_run(self, experiment_id: str, start_time: int | None = None, tags: dict | None = None,
                   run_name: str | None = None):  # fmt: skip
        """The new run, or a `PendingRun` when the store did not create it within `CREATE_WAIT_S` (it is created
        when the queue or the spool gets to it, under the id `resolve` then returns). The run carries its key
        (`spool.RUN_KEY_TAG`), so a create whose answer was lost is found again, not repeated."""
        key = new_run_key()
        tags = {**(tags or {}), RUN_KEY_TAG: key}
        kwargs = {"start_time": start_time or now_ms(), "tags": tags, "run_name": run_name}
        future = self._put("create_run", (experiment_id,), kwargs)
        if self.down and self.spool is not None:  # it will be spooled (or, the store back, created) in its turn
            return PendingRun(key)
        try:
            return future.result(timeout=CREATE_WAIT_S)
        except FutureTimeout:
            if self.spool is None:
                raise StoreUnavailable(f"the MLflow store did not create a run within {CREATE_WAIT_S:.0f} s") from None
            return PendingRun(key)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """As MlflowClient's; the end time is the call's, even if the store takes the write later."""
        self._put("set_terminated", (run_id, status), {"end_time": end_time or now_ms()})

    def _wait(self, future: Future, timeout: float) -> Any:
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            raise StoreUnavailable(f"the MLflow store did not answer within {timeout:.0f} s") from None

    def _put(self, name: str, args, kwargs) -> Future:
        done: Future = Future()
        with self._lock:
            if self._abandoned:
                self._set_aside((name, args, kwargs, done))
                return done
            if self._queue is None:
                self._queue = queue.Queue()
                threading.Thread(target=self._work, args=(self._queue,), name="mlflow-writer", daemon=True).start()
            self._queue.put((name, args, kwargs, done))
        # unfinished_tasks: queued plus the one being run; read without the lock (a benchmark figure, not a control)
        self.stats.max_backlog = max(self.stats.max_backlog, self._queue.unfinished_tasks)
        return done

    # -- the writer thread ------------------------------------------------------------------------------------------
    def _work(self, q: queue.Queue) -> None:
        while True:
            try:
                item = q.get(timeout=PROBE_EVERY_S)
            except queue.Empty:
                if self.down_since is not None and not self._abandoned:
                    self._try_replay()
                continue
            started = time.perf_counter()
            try:
                self._run(item)
            except BaseException as exc:  # never leave a caller waiting on a future nobody will resolve
                if not item[3].done():
                    item[3].set_exception(exc)
            finally:
                self.stats.calls += 1
                self.stats.busy_s += time.perf_counter() - started
                q.task_done()

    def _run(self, item: tuple) -> None:
        name, args, kwargs, done = item
        if name == _REPLAY:
            done.set_result(self._try_replay())
            return
        with self._lock:
            if self.down:
                self._set_aside(item)
                aside = True
            else:
                self._current, aside = item, False
        if aside:
            if not self._abandoned and time.monotonic() >= self._next_probe:
                self._try_replay()
            return
        try:
            result = apply_write(self.client, Write(0, name, list(args), dict(kwargs)), self.ids, replaying=False)
        except Exception as exc:
            outage = self.spool is not None and store_unreachable(exc, self.client)
            with self._lock:
                if self._current is not item:  # a stop spooled it meanwhile (abandon)
                    return
                self._current = None
                if outage:
                    self._went_down(exc)
                    self._set_aside(item)
                    return
            done.set_exception(exc)
            if name not in READS:  # a caller waiting on a read sees its error; a write's is kept
                self._errors.append(f"{name}: {exc}")
                log.warning("MLflow %s failed: %s", name, exc)
            return
        with self._lock:
            if self._current is item:
                self._current = None
        if not done.done():
            done.set_result(result)

    def _set_aside(self, item: tuple) -> None:
        """While the store is down (the lock held): a write goes to the spool, a read fails at once."""
        name, args, kwargs, done = item
        if done.done():
            return
        if name in READS:
            done.set_exception(StoreUnavailable(f"{name}: the MLflow store is not answering"))
            return
        if self.spool is None:
            self._errors.append(f"{name}: the MLflow store did not answer")
            done.set_exception(StoreUnavailable(f"{name}: the MLflow store is not answering"))
            return
        try:
            self.spool.append(name, args, kwargs)
        except OSError as exc:
            self._errors.append(f"{name}: the store did not answer and the spool {self.spool.folder} failed: {exc}")
            done.set_exception(exc)
            return
        done.set_result(PendingRun(kwargs["tags"][RUN_KEY_TAG]) if name == "create_run" else None)

    def _went_down(self, exc: BaseException) -> None:
        self.down_since = time.monotonic()
        self._next_probe = self.down_since + PROBE_EVERY_S
        where = f"; or replay them with: raytune-suite sync {self.sweep_dir}" if self.sweep_dir else ""
        print(
            f"tracking: the MLflow store {self.client.tracking_uri} does not answer ({short_reason(exc)}); trials go "
            f"on, their records are kept in {self.spool.folder} and written when it answers again{where}",
            file=sys.stderr,
            flush=True,
        )

    def _try_replay(self) -> bool:
        """Ask the store; if it answers, replay the spool in order and go back to writing directly. True when the
        store holds everything the spool held."""
        if self.down_since is None:
            return True
        self._next_probe = time.monotonic() + PROBE_EVERY_S
        if not answers(self.client):
            return False
        try:
            count = replay(self.spool, self.client, on_error=self._errors.append)
        except Exception:  # gone again: the spool kept its place
            self._next_probe = time.monotonic() + PROBE_EVERY_S
            return False
        with self._lock:
            if self._abandoned:
                return False
            lasted = time.monotonic() - self.down_since
            self.outage_s.append(lasted)
            self.down_since = None
            self.replayed += count
        print(
            f"tracking: the MLflow store answers again after {lasted:.0f} s; {count} kept write(s) written to it",
            file=sys.stderr,
            flush=True,
        )
        return True

    # -- the caller's side ------------------------------------------------------------------------------------------
    def _wait_empty(self, timeout: float) -> bool:
        q = self._queue
        if q is None:
            return True
        deadline = time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                q.all_tasks_done.wait(left)
        return True

    def abandon(self) -> None:
        """Stop waiting for the thread: the call it runs and everything queued go to the spool now, in order, and
        so does every later call. For a stop that cannot wait for a store that does not answer."""
        with self._lock:
            if self._abandoned:
                return
            self._abandoned = True
            items = [self._current] if self._current is not None else []
            self._current = None
            while self._queue is not None:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                self._queue.task_done()
            for item in items:
                if item[0] == _REPLAY:
                    item[3].set_result(False)
                else:
                    self._set_aside(item)

    def drain(self, timeout: float = DRAIN_S) -> None:
        """Wait until every queued write is done or spooled, at most `timeout` (then the rest is spooled: `abandon`);
        raise if any failed, so no lost record goes unnoticed."""
        if not self._wait_empty(timeout):
            self.abandon()
        if self._errors:
            errors, self._errors = self._errors, []
            raise RunFailure(f"{len(errors)} MLflow write(s) failed; first: {errors[0]}")

    def settle(self, timeout: float) -> bool:
        """Within `timeout`: every queued write done, and if the store was down, one more try to replay the spool.
        True when the store holds every write made so far; False when some are in the spool (or still queued)."""
        deadline = time.monotonic() + timeout
        if not self._wait_empty(timeout):
            return False
        while self.down_since is not None and not self._abandoned:
            try:
                if self._put(_REPLAY, (), {}).result(timeout=max(0.0, deadline - time.monotonic())):
                    break
            except FutureTimeout:
                return False
            if time.monotonic() + PROBE_EVERY_S > deadline:
                return False
            time.sleep(PROBE_EVERY_S)
        return not self.down and self.spooled == 0

    # Tune pickles callbacks with its experiment state: ship the client, not the thread (nor the outage's state).
    def __getstate__(self) -> dict:
        return {"client": self.client}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["client"])  # also a state pickled with fields this version no longer keeps
