"""A new SQLite store is a copy of an empty one migrated once per MLflow version: the same schema and Default
experiment MLflow itself would create, in milliseconds instead of its ~2 s of migrations."""

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from raytune_suite.track.store import empty_store, open_sweep_store


def schema(db: Path) -> set:
    """Tables with their columns, indexes, the migration version (MLflow's own CREATE texts vary from process to
    process: some constraints come from sets)."""
    with sqlite3.connect(db) as con:
        objects = list(con.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        columns = {
            (table, tuple(row[1:3] for row in con.execute(f"PRAGMA table_info('{table}')")))
            for kind, _, table in objects
            if kind == "table"
        }
        return set(objects) | columns | {con.execute("SELECT version_num FROM alembic_version").fetchone()}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache" / "raytune_suite"


def test_a_new_store_has_the_schema_and_default_experiment_mlflow_itself_creates(tmp_path, cache):
    by_mlflow = tmp_path / "by_mlflow.db"
    MlflowClient(f"sqlite:///{by_mlflow}").search_experiments(max_results=1)
    copied = tmp_path / "copied.db"
    _, experiment_id = open_sweep_store(f"sqlite:///{copied}", "sweep")

    assert schema(copied) == schema(by_mlflow)
    ours, theirs = MlflowClient(f"sqlite:///{copied}"), MlflowClient(f"sqlite:///{by_mlflow}")
    assert ours.get_experiment("0").artifact_location == theirs.get_experiment("0").artifact_location
    assert ours.get_experiment(experiment_id).name == "sweep"
    assert list(cache.glob("mlflow-*-empty.db")) == [empty_store()]


def test_a_store_that_exists_is_opened_not_replaced(tmp_path, cache):
    db = tmp_path / "mlflow.db"
    _, first = open_sweep_store(f"sqlite:///{db}", "a")
    _, second = open_sweep_store(f"sqlite:///{db}", "b")
    names = {e.name for e in MlflowClient(f"sqlite:///{db}").search_experiments()}
    assert names == {"Default", "a", "b"} and first != second


def test_without_a_writable_cache_mlflow_creates_the_store_itself(tmp_path, monkeypatch):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    db = tmp_path / "mlflow.db"
    _, experiment_id = open_sweep_store(f"sqlite:///{db}", "sweep")
    assert MlflowClient(f"sqlite:///{db}").get_experiment(experiment_id).name == "sweep"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mlflow.db")] == []
