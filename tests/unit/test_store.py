"""Listing a sweep's children from the store (real SQLite store, no Ray)."""

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from raytune_suite.errors import ConfigError
from raytune_suite.track import store
from tests.conftest import EXPERIMENTS


def test_every_child_run_is_listed_however_many_pages_it_takes(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = store.experiment_id_for(client, "children", uri)
    parent = client.create_run(experiment_id, run_name="sweep").info.run_id
    other = client.create_run(experiment_id, run_name="other sweep").info.run_id
    mine = {client.create_run(experiment_id, tags={"mlflow.parentRunId": parent}).info.run_id for _ in range(7)}
    client.create_run(experiment_id, tags={"mlflow.parentRunId": other})

    listed = store.child_runs(client, experiment_id, parent, page=3)
    assert sorted(r.info.run_id for r in listed) == sorted(mine)


def test_a_sqlite_path_that_is_a_folder_or_an_mlartifacts_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(
        ConfigError, match=r"adir is a folder; name the SQLite file, e.g\. sqlite:///.*adir/mlflow\.db$"
    ):
        store.check_local_store(f"sqlite:///{tmp_path / 'adir'}", "--mlflow-uri")
    (tmp_path / "mlartifacts").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"mlartifacts, where this store keeps the runs' artifacts, is a file"):
        store.check_local_store(f"sqlite:///{tmp_path / 'mlflow.db'}", "--mlflow-uri")
    store.check_local_store(f"sqlite:///{tmp_path / 'adir' / 'mlflow.db'}", "--mlflow-uri")  # fine: a new file


@pytest.mark.parametrize("case", ["folder", "mlartifacts"])
def test_run_refuses_such_a_store_before_anything_starts(tmp_path, case):
    # Before: a folder passed the preflight, Ray started, MLflow retried for two minutes, then a traceback (exit 1 at
    # 121 s, `adir.lock` left); an mlartifacts file ran the whole sweep, logged no artifact and exited 1.
    if case == "folder":
        (tmp_path / "adir").mkdir()
        uri = "sqlite:///adir"
    else:
        (tmp_path / "mlartifacts").write_text("a file")
        uri = "sqlite:///mlflow.db"
    before = sorted(p.name for p in tmp_path.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "raytune_suite.cli", "run", str(EXPERIMENTS / "diabetes_linear.yaml"), "--mlflow-uri",
         uri, "--num-samples", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --mlflow-uri {uri}: "), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no lock, store or ray_results
