"""Listing a sweep's children from the store (real SQLite store, no Ray)."""

from mlflow import MlflowClient

from raytune_suite import store


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
