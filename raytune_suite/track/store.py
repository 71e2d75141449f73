"""Access to the MLflow tracking store: which store, opening it safely, the sweep's experiment.

Opening a new SQLite store creates its schema (MLflow runs its Alembic migrations on first use). Two sweeps that
start at once in a fresh folder would both migrate the same file, and one of them crashes; so the first open of a
local store, and the get-or-create of its experiment, run under an exclusive file lock beside the database.
Those migrations take ~2 s on every new store; a new store is therefore a copy of an empty one that was migrated
once per MLflow version and kept in the user's cache (`new_sqlite_store`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from raytune_suite.errors import ConfigError

if TYPE_CHECKING:  # MLflow is imported where a store is opened: the preflight reads this module's names first
    from mlflow import MlflowClient

    from raytune_suite.track.store_writer import QueuedClient

DEFAULT_DB = "mlflow.db"
# Runs per `search_runs` page when listing a parent's children (MLflow's own default page size).
CHILD_PAGE = 1000


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else a SQLite file in the working directory (the file store is refused by MLflow 3)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def pick_tracking_uri(flag: str | None = None, saved: str | None = None, config: str | None = None) -> tuple[str, str]:
    """The store a command uses, and the field it came from, by the one rule every command follows: `--mlflow-uri`;
    the sweep's own store (its run map: `--resume`, `report`, `sync`); the config's `mlflow.tracking_uri`;
    $MLFLOW_TRACKING_URI; ./mlflow.db (named as `--mlflow-uri`, the flag that changes it)."""
    for value, field in (
        (flag, "--mlflow-uri"),
        (saved, "the sweep's run map"),
        (config, "mlflow.tracking_uri"),
        (os.environ.get("MLFLOW_TRACKING_URI"), "$MLFLOW_TRACKING_URI"),
    ):
        if value:
            return value, field
    return default_tracking_uri(), "--mlflow-uri"


def is_local_uri(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def check_local_store(uri: str, field: str) -> None:
    """A SQLite store's database is a regular file (or not there yet) and `mlartifacts` beside it, where a new
    experiment keeps its artifacts (`experiment_id_for`), a folder (or not there yet): a `ConfigError` naming the
    fix otherwise, checked before anything starts. A folder as the database made MLflow retry for two minutes and
    end in a traceback, Ray started meanwhile; an `mlartifacts` file failed every artifact write of the sweep."""
    db = sqlite_path(uri)
    if db is None:
        return
    if db.is_dir():
        raise ConfigError(f"{field} {uri}: {db} is a folder; name the SQLite file, e.g. sqlite:///{db / DEFAULT_DB}")
    if db.exists() and not db.is_file():
        raise ConfigError(f"{field} {uri}: {db} is not a regular file; name a SQLite file, e.g. .../{DEFAULT_DB}")
    artifacts = db.parent / "mlartifacts"
    if artifacts.exists() and not artifacts.is_dir():
        raise ConfigError(
            f"{field} {uri}: {artifacts}, where this store keeps the runs' artifacts, is a file; move it away or "
            "put the store in another folder"
        )


@contextlib.contextmanager
def creation_lock(uri: str):
    """Hold an exclusive lock beside a SQLite store while it may be created; a no-op for servers."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_sweep_store(uri: str, experiment_name: str | None) -> tuple[QueuedClient, str | None]:
    """A queued client of the store and the id of the sweep's experiment (created if needed; None without a
    name), race-free: the first use of a new store creates its schema under the lock."""
    from mlflow import MlflowClient

    from raytune_suite.track.store_writer import QueuedClient

    with creation_lock(uri):
        if (db := sqlite_path(uri)) is not None and not db.exists():
            new_sqlite_store(db)
        client = MlflowClient(tracking_uri=uri)
        if experiment_name is None:
            client.search_experiments(max_results=1)
            return QueuedClient(client), None
        experiment_id = experiment_id_for(client, experiment_name, uri)
    return QueuedClient(client), experiment_id


def new_sqlite_store(db: Path) -> None:
    """Create `db` as a copy of the cached empty store, its Default experiment set as MLflow would set it here.

    Exits: any failure (no cache folder, a full disk) leaves no `db` behind and MLflow then creates the store itself.
    """
    partial = db.with_name(f".{db.name}.{os.getpid()}.new")
    try:
        shutil.copyfile(empty_store(), partial)
        with contextlib.closing(sqlite3.connect(partial)) as con, con:
            now = int(time.time() * 1000)
            con.execute(  # MLflow puts the Default experiment's artifacts under the working directory's ./mlruns
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                "WHERE experiment_id = 0",
                (str(Path.cwd() / "mlruns" / "0"), now, now),
            )
        os.replace(partial, db)
    except (OSError, sqlite3.Error):
        partial.unlink(missing_ok=True)


def empty_store() -> Path:
    """An empty SQLite store at this MLflow version's schema, migrated once and kept in the user's cache."""
    import mlflow
    from mlflow import MlflowClient

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "raytune_suite"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    if template.exists():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as building:
        db = Path(building) / "empty.db"
        client = MlflowClient(tracking_uri=f"sqlite:///{db}")
        client.search_experiments(max_results=1)  # runs the migrations
        os.replace(db, template)  # atomic: another driver building it at the same time is harmless
    return template


def experiment_id_for(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """Get or create the MLflow experiment; a local store keeps artifacts beside the database, by absolute path.

    A SQLite store's default artifact root is ./mlruns relative to whatever the cwd is when runs log, which
    inside a Ray job's working_dir vanishes with the job.
    """
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if (db := sqlite_path(tracking_uri)) is not None:
        location = (db.parent / "mlartifacts").resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another driver created it between our read and our write (a server store: no lock)
        existing = client.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing.experiment_id


def child_runs(client, experiment_id: str, parent_run_id: str, page: int = CHILD_PAGE) -> list:
    """Every child run of a sweep's parent, page by page: one `search_runs` call returns at most `max_results`
    runs and says nothing when it stops short, so a fixed limit silently drops the trials beyond it."""
    runs, token = [], None
    while True:
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=page,
            page_token=token,
        )  # fmt: skip
        runs += found
        token = found.token
        if not token:
            return runs


@contextlib.contextmanager
def fluent_tracking_uri(uri: str):
    """Point MLflow's fluent API at `uri` for a block, then put everything back.

    `mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI, so every process started later (a trial, a test's
    CLI) would silently log to this store. What was set before is set again; `set_tracking_uri(None)` unsets both
    (a URI set in code is exported too, so the variable says what was set).
    """
    import mlflow

    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(exported)
