"""The spool and the writer's deadlines, against real stores and real sockets (no Ray): a store that refuses
connections (a port nobody listens on), one that accepts and never answers (a socket that never reads), and a SQLite
store to replay onto. The full outage, with a real `mlflow server` killed mid-sweep: tests/integration/
test_tracking_outage.py."""

import math
import socket
import time

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from raytune_suite.track import store_writer
from raytune_suite.track.spool import RUN_KEY_TAG, Spool, replay
from raytune_suite.track.store_writer import HTTP_DEADLINES, PendingRun, QueuedClient, StoreUnavailable


@pytest.fixture(autouse=True)
def bounded_http(monkeypatch):
    for key, value in HTTP_DEADLINES.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def refusing_uri():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # closed again: connections are refused


@pytest.fixture
def silent_uri():
    """Accepts connections (the kernel's backlog) and never answers: a hung server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def target(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    return client, client.create_experiment("x", artifact_location=(tmp_path / "artifacts").as_uri())


def test_writes_to_a_store_that_refuses_go_to_the_spool_and_replay_exactly_once(refusing_uri, target, tmp_path, capsys):
    store, experiment = target
    spool = Spool(tmp_path / "spool")
    queued = QueuedClient(MlflowClient(refusing_uri))
    queued.spool_to(spool, "SWEEP")
    started = time.monotonic()
    run = queued.create_run(experiment, run_name="t1", tags={"trial_id": "t1"})
    assert isinstance(run, PendingRun) and time.monotonic() - started < 10  # its creation waits for the store
    run_id = run.info.run_id
    queued.log_batch(run_id, params=[Param("train.lr", "0.1")], tags=[RunTag("status", "RUNNING")])
    for step in (1, 2):
        queued.log_batch(run_id, metrics=[Metric("val_rmse", 1.0 / step, 1000 + step, step)])
    queued.log_batch(run_id, metrics=[Metric("val_rmse", math.nan, 1003, 3)])
    queued.log_text(run_id, "trace", "error.txt")
    queued.set_tag(run_id, "best_run_id", run_id)  # a spooled id inside a value
    queued.delete_tag(run_id, "never_set")  # a tag already gone is what was asked
    queued.set_terminated(run_id, "FAILED")
    queued.drain(timeout=30)
    assert queued.down and len(spool) == 9
    assert capsys.readouterr().err.count("does not answer") == 1
    with pytest.raises(StoreUnavailable):  # a read while the store is down fails at once
        queued.get_run(run_id)

    assert replay(spool, store) == 9 and len(spool) == 0
    real = spool.ids[run_id]
    logged = store.get_run(real)
    assert logged.info.status == "FAILED" and logged.data.params == {"train.lr": "0.1"}
    assert logged.data.tags["best_run_id"] == real and logged.data.tags[RUN_KEY_TAG] == run_id
    history = store.get_metric_history(real, "val_rmse")
    assert [(m.step, m.timestamp) for m in history] == [(1, 1001), (2, 1002), (3, 1003)]
    again = Spool(tmp_path / "spool")  # what `sync` or a resume would find: nothing pending, the ids kept
    assert len(again) == 0 and again.ids == {run_id: real}


def test_a_replay_that_repeats_every_write_changes_nothing(refusing_uri, target, tmp_path):
    store, experiment = target
    spool = Spool(tmp_path / "spool")
    queued = QueuedClient(MlflowClient(refusing_uri))
    queued.spool_to(spool, "SWEEP")
    run_id = queued.create_run(experiment, run_name="t1").info.run_id
    queued.log_batch(run_id, metrics=[Metric("loss", 0.5, 7, 1)], params=[Param("a", "1")])
    queued.set_terminated(run_id, "FINISHED")
    queued.drain(timeout=30)
    journal = spool.writes.read_text()

    replay(spool, store)
    spool.writes.write_text(journal)  # as if the driver died after the writes, before the mark
    spool.replayed = 0
    replay(spool, store)
    runs = store.search_runs([experiment])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert [m.step for m in store.get_metric_history(runs[0].info.run_id, "loss")] == [1]


def test_a_store_that_never_answers_holds_no_caller_past_its_deadline(silent_uri, tmp_path, monkeypatch):
    monkeypatch.setattr(store_writer, "CREATE_WAIT_S", 1.0)
    spool = Spool(tmp_path / "spool")
    queued = QueuedClient(MlflowClient(silent_uri))
    queued.spool_to(spool, "SWEEP")
    started = time.monotonic()
    run_id = queued.create_run("0", run_name="t1").info.run_id  # the thread waits on the silent server
    for step in range(3):
        queued.log_batch(run_id, metrics=[Metric("loss", 1.0, 0, step)])
    queued.set_terminated(run_id, "KILLED")
    queued.drain(timeout=1.0)  # a stop cannot wait: what is queued, and the call under way, go to the spool
    assert time.monotonic() - started < 5
    assert [w.call for w in spool.pending()] == ["create_run", "log_batch", "log_batch", "log_batch", "set_terminated"]
    queued.set_tag(run_id, "late", "1")  # after that, writes go straight to the spool
    assert spool.pending()[-1].call == "set_tag"
