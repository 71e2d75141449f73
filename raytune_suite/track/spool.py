"""The MLflow spool: the writes a tracking store could not take, kept in order on local disk until it answers again.

Who writes it: the driver's writer thread (`store_writer.QueuedClient`) when the store stops answering mid-sweep, and
the driver itself for what is still queued when a stop cannot wait. Who replays it: the writer thread once the store
answers again (during the sweep, or at its end), `run --resume`, and `raytune-suite sync SWEEP_DIR`.

Layout, in `<sweep folder>/mlflow_spool/` (a sweep folder on remote storage keeps it on local disk, under the user's
cache: `spool_folder`):
- `writes.jsonl`: one write per line, `{"seq": n, "call": "log_batch", "args": [...], "kwargs": {...}}`, appended and
  fsync'd before the writer moves on; files a write uploads are copied to `files/<seq>/` first;
- `replayed.json`: the last `seq` replayed, and `ids`: the store's id of every run created from here (a run created
  while the store was down is known as `spooled-<hex>` until then). Replaced atomically.

Exactly once: writes are replayed in order and each is idempotent, so a replay cut short (the store went away again,
the driver was killed) starts again from its last mark and changes nothing twice. A run is created once (found again
by its `RUN_KEY_TAG`, which every run the suite creates carries); a metric keeps the timestamp of the original call,
and MLflow keeps one row per identical (key, value, step, timestamp); params, tags and ends set the same values again
(ends carry the time of the original call); deleting a tag that is gone, or writing to a run deleted later in the
journal, is done already.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag

SPOOL_DIR = "mlflow_spool"
WRITES_FILE = "writes.jsonl"
MARK_FILE = "replayed.json"
# Every run the suite creates carries its own key, so that a create whose answer was lost is found, not repeated.
RUN_KEY_TAG = "raytune_suite.run_key"
# The id a run is known by until the store has created it.
LOCAL_PREFIX = "spooled-"
# Writes that upload local files: the files are copied into the spool, as the caller may delete them at once.
UPLOADS = {"log_artifact", "log_artifacts"}
# Replay marks its place after at most this many writes (and after every run it creates): a replay cut short
# repeats at most these, which is harmless (idempotent) but costs calls.
MARK_EVERY = 100
# The parent run's tag saying its report and model wait for the rest of the sweep's records (value: the name to
# register the model under, or ""): a sweep whose store did not answer at its end; `raytune-suite sync` publishes.
PUBLISH_PENDING = "publish_pending"


def new_run_key() -> str:
    return f"{LOCAL_PREFIX}{uuid.uuid4().hex}"


def spool_folder(sweep_dir: str) -> Path:
    """`<sweep folder>/mlflow_spool`; for a remote sweep folder (s3://...), a local folder of the same name under the
    user's cache, as the spool must survive on this machine's disk."""
    from raytune_suite.run import storage

    if not storage.is_remote(sweep_dir):
        return Path(sweep_dir) / SPOOL_DIR
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "raytune_suite" / SPOOL_DIR
    return cache / str(sweep_dir).rstrip("/").replace("://", "/").replace("/", "_")


# -- encoding ---------------------------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, Metric):
        return {"__metric__": [value.key, value.value, value.timestamp, value.step]}
    if isinstance(value, Param):
        return {"__param__": [value.key, value.value]}
    if isinstance(value, RunTag):
        return {"__tag__": [value.key, value.value]}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__metric__" in value:
            key, metric, timestamp, step = value["__metric__"]
            return Metric(key, metric, timestamp, step)
        if "__param__" in value:
            return Param(*value["__param__"])
        if "__tag__" in value:
            return RunTag(*value["__tag__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def translate(value: Any, ids: dict[str, str]) -> Any:
    """`value` with every spooled run id the store has created replaced by the store's id (in tags too)."""
    if isinstance(value, str):
        return ids.get(value, value) if value.startswith(LOCAL_PREFIX) else value
    if isinstance(value, RunTag):
        return RunTag(value.key, translate(value.value, ids))
    if isinstance(value, (list, tuple)):
        return type(value)(translate(v, ids) for v in value)
    if isinstance(value, dict):
        return {k: translate(v, ids) for k, v in value.items()}
    return value


@dataclass
class Write:
    seq: int
    call: str
    args: list
    kwargs: dict


class Spool:
    """The journal of one sweep: appends, reads and marks are thread-safe (the writer thread replays while a stopping
    driver may spool what is still queued).

    Args: folder: where it lives (`spool_folder(sweep_dir)`); created on the first write."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.writes = self.folder / WRITES_FILE
        self.mark_file = self.folder / MARK_FILE
        self._lock = threading.RLock()
        self.replayed, self.ids = self._read_mark()
        self._next = max(self.replayed, self._last_seq()) + 1

    def _read_mark(self) -> tuple[int, dict[str, str]]:
        if not self.mark_file.exists():
            return 0, {}
        raw = json.loads(self.mark_file.read_text())
        return int(raw.get("seq", 0)), dict(raw.get("ids", {}))

    def _lines(self) -> list[Write]:
        with self._lock:
            if not self.writes.exists():
                return []
            text = self.writes.read_text()
        found = []
        for line in text.splitlines():
            try:
                raw = json.loads(line)
            except ValueError:  # a line cut short when the driver died mid-write: its write never returned either
                continue
            found.append(Write(int(raw["seq"]), raw["call"], _decode(raw["args"]), _decode(raw["kwargs"])))
        return found

    def _last_seq(self) -> int:
        lines = self._lines()
        return lines[-1].seq if lines else 0

    def pending(self) -> list[Write]:
        """The writes not replayed yet, in the order they were made."""
        return [w for w in self._lines() if w.seq > self.replayed]

    def __len__(self) -> int:
        return len(self.pending())

    def append(self, call: str, args: tuple | list, kwargs: dict) -> None:
        """Journal one write, on disk (fsync'd) before this returns. Files it uploads are copied in first."""
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            seq = self._next
            if call in UPLOADS:  # (run_id, local path, ...): the caller passes the path by position
                args = [args[0], self._keep_files(seq, args[1]), *args[2:]]
            line = json.dumps({"seq": seq, "call": call, "args": _encode(list(args)), "kwargs": _encode(kwargs)})
            with open(self.writes, "a") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._next = seq + 1

    def _keep_files(self, seq: int, path: str) -> str:
        kept = self.folder / "files" / str(seq)
        source = Path(path)
        if source.is_dir():
            shutil.copytree(source, kept)
            return str(kept)
        kept.mkdir(parents=True)
        shutil.copy2(source, kept / source.name)
        return str(kept / source.name)

    def mark(self, seq: int) -> None:
        """Everything up to `seq` is in the store, `ids` as known now; once nothing is pending, the journal goes."""
        with self._lock:
            self.replayed = max(self.replayed, seq)
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.mark_file.with_name(MARK_FILE + ".new")
            with open(partial, "w") as handle:
                json.dump({"seq": self.replayed, "ids": dict(self.ids)}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, self.mark_file)
            if self.replayed >= self._next - 1 and self.writes.exists():
                self.writes.unlink()
                shutil.rmtree(self.folder / "files", ignore_errors=True)


def spool_of(sweep_dir: str) -> Spool | None:
    """The sweep's spool if it has one (pending writes or the ids of runs it created), else None."""
    folder = spool_folder(sweep_dir)
    return Spool(folder) if folder.exists() else None


# -- applying writes ----------------------------------------------------------------------------------------------
def apply_write(client, write: Write, ids: dict[str, str], replaying: bool) -> Any:
    """Run one write on `client` (an `MlflowClient`), its spooled run ids translated; a created run's id is added to
    `ids`. `replaying`: the write may have reached the store before (see the module's docstring)."""
    args, kwargs = translate(write.args, ids), translate(write.kwargs, ids)
    if write.call == "create_run":
        key = (write.kwargs.get("tags") or {}).get(RUN_KEY_TAG)  # the key itself, never translated
        if key:
            kwargs["tags"][RUN_KEY_TAG] = key
        run = _created_before(client, args[0], key) if replaying and key else None
        run = run or client.create_run(*args, **kwargs)
        if key:
            ids[key] = run.info.run_id
        return run
    try:
        return getattr(client, write.call)(*args, **kwargs)
    except Exception as exc:
        if already_done(write.call, exc, replaying):
            return None
        raise


def _created_before(client, experiment_id: str, key: str):
    from mlflow.entities import ViewType

    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'", run_view_type=ViewType.ALL, max_results=1
    )
    return found[0] if found else None


def already_done(call: str, exc: Exception, replaying: bool = False) -> bool:
    """The failed write asked for what is so already (see the module's docstring)."""
    code = getattr(exc, "error_code", "")
    if call == "delete_tag" and code == "RESOURCE_DOES_NOT_EXIST":  # the tag is gone: what was asked
        return True
    # A replay repeating writes to a run the journal deletes later (an orphaned trial's run): nothing to change.
    return replaying and code == "INVALID_STATE" and "active" in str(exc)


def replay(spool: Spool, client, *, on_error: Callable[[str], None] | None = None) -> int:
    """Replay the spool's pending writes on `client` in order; returns how many. A write that fails for a reason of
    its own goes to `on_error` (raised without one) and the replay goes on; one that finds the store gone raises, the
    place kept."""
    done = 0
    last = spool.replayed
    for write in spool.pending():
        try:
            apply_write(client, write, spool.ids, replaying=True)
        except Exception as exc:
            if on_error is None or unreachable(exc, client):
                spool.mark(last)
                raise
            on_error(f"{write.call}: {exc}")
        last, done = write.seq, done + 1
        if write.call == "create_run" or done % MARK_EVERY == 0:
            spool.mark(last)
    spool.mark(last)
    return done


# -- is the store there? ---------------------------------------------------------------------------------------------
def transport_error(exc: BaseException) -> bool:
    """The error (or one it wraps) says the store could not be reached: a refused or reset connection, a timeout,
    a database that could not be opened or was locked. MLflow's REST client wraps the `requests` error it got in a
    message only (`raise ... ` inside its `except`), so the chain's context is read too."""
    import requests
    import urllib3

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
            return True
        if type(exc).__name__ == "OperationalError":  # sqlite3's or SQLAlchemy's: locked, unreadable, disk I/O
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def answers(client) -> bool:
    """One cheap read (bounded by MLflow's HTTP timeouts, store_writer.HTTP_DEADLINES): does the store answer?"""
    try:
        client.search_experiments(max_results=1)
    except Exception:
        return False
    return True


def unreachable(exc: BaseException, client) -> bool:
    """A failed call failed because the store is not there (not for a reason of its own, like a changed param)."""
    return transport_error(exc) or not answers(client)
