import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from raytune_suite.errors import RunFailure
from raytune_suite.track.store_writer import QueuedClient


@pytest.fixture
def client(tmp_path):
    return MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")


def test_queued_writes_land_in_order_and_reads_see_them(client):
    queued = QueuedClient(client)
    run_id = queued.create_run(client.create_experiment("x")).info.run_id
    for step in range(5):
        queued.log_batch(run_id, metrics=[Metric("loss", 1.0 / (step + 1), 0, step)])
    queued.set_terminated(run_id, "FINISHED")
    queued.drain()
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(5))
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_failed_write_is_reported_at_drain_not_lost(client):
    queued = QueuedClient(client)
    queued.set_tag("no-such-run", "k", "v")
    with pytest.raises(RunFailure, match=r"1 MLflow write\(s\) failed; first: set_tag"):
        queued.drain()


def test_it_pickles_without_its_thread(client):
    import pickle

    queued = QueuedClient(client)
    queued.set_tag(queued.create_run(client.create_experiment("x")).info.run_id, "k", "v")
    queued.drain()
    assert queued._queue is not None  # the writer thread is running
    clone = pickle.loads(pickle.dumps(queued))
    assert clone._queue is None and clone.client.tracking_uri == client.tracking_uri


def test_uploads_finish_before_the_call_returns_so_temporary_files_may_go(client, tmp_path):
    queued = QueuedClient(client)
    # artifacts beside the store: a SQLite store's default root is ./mlruns under the working directory
    experiment = client.create_experiment("x", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = queued.create_run(experiment).info.run_id
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.txt").write_text("plot")
    queued.log_artifacts(run_id, str(folder))
    (folder / "a.txt").unlink()  # what a TemporaryDirectory does on exit
    queued.drain()
    assert [a.path for a in client.list_artifacts(run_id)] == ["a.txt"]


def test_stats_count_the_calls_and_the_deepest_backlog(client):
    queued = QueuedClient(client)
    run_id = queued.create_run(client.create_experiment("x")).info.run_id
    for step in range(20):
        queued.log_batch(run_id, metrics=[Metric("loss", 1.0, 0, step)])
    queued.drain()
    assert queued.stats.calls == 21 and queued.stats.busy_s > 0
    assert 1 <= queued.stats.max_backlog <= 20
