"""How the tracker ends runs (real SQLite store, no Ray): a failed queued write never leaves a run RUNNING,
ending twice changes nothing, and the best trial is chosen by the objective alone."""

from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from mlflow.entities import Param, RunStatus

from raytune_suite.config.objective import Objective
from raytune_suite.track import store
from raytune_suite.track.store_writer import QueuedClient
from raytune_suite.track.tracking import MlflowTracker


@pytest.fixture
def tracker(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = store.experiment_id_for(client, "lifecycle", uri)
    parent = client.create_run(experiment_id, run_name="sweep").info.run_id
    return MlflowTracker(
        QueuedClient(client), experiment_id, parent, Objective("val_loss", "min"), max_epochs=3
    ), client


def trial(tid: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=tid, config={"train": {"lr": 0.1}}, last_result={})


def result(epoch: int, loss: float, **extra) -> dict:
    return {"epoch": epoch, "val_loss": loss, "training_iteration": epoch, **extra}


def test_a_failed_queued_write_does_not_keep_any_run_running(tracker):
    tracker, client = tracker
    for tid in ("a", "b"):
        tracker.on_trial_start(0, [], trial(tid))
    run_a = tracker.records["a"].run_id
    tracker.client.log_batch(run_a, params=[Param("train.lr", "0.5")])  # MLflow refuses to change a param
    tracker.finish(RunStatus.KILLED)

    runs = client.search_runs([tracker.experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"} and len(runs) == 3
    assert tracker.write_errors and "log_batch" in tracker.write_errors[0]


def test_finishing_twice_keeps_the_first_status(tracker):
    tracker, client = tracker
    tracker.on_trial_start(0, [], trial("a"))
    tracker.finish(RunStatus.FAILED)
    tracker.finish(RunStatus.KILLED)
    assert client.get_run(tracker.parent_run_id).info.status == "FAILED"


def test_a_diverged_trial_is_never_the_best_even_with_the_best_value(tracker):
    tracker, client = tracker
    for tid, losses in {"good": [0.9, 0.5], "diverged": [0.1, 1e30]}.items():
        tracker.on_trial_start(0, [], trial(tid))
        for epoch, loss in enumerate(losses, start=1):
            extra = {"diverged": 1.0} if loss == 1e30 else {}
            tracker.on_trial_result(0, [], trial(tid), result(epoch, loss, **extra))
    best_id, record = tracker.finish(RunStatus.FINISHED)
    assert best_id == "good" and record.best == 0.5
    history = client.get_metric_history(tracker.records["diverged"].run_id, "val_loss")
    assert history[0].value == 0.1 and str(history[1].value) == "nan"


def test_the_run_map_is_not_rewritten_at_every_trial_start_yet_ends_complete(tracker, tmp_path, monkeypatch):
    from raytune_suite.track.runmap import RunMap

    tracker, _ = tracker
    tracker.sweep_dir = str(tmp_path / "sweep")
    saves = []
    monkeypatch.setattr(RunMap, "save", lambda self, folder: saves.append(sorted(self.trials)))
    tracker.save_run_map()
    tracker._next_map_save = float("inf")  # as after a slow write: the next ones wait
    for tid in ("a", "b", "c"):
        tracker.on_trial_start(0, [], trial(tid))
    tracker.on_step_end(0, [])
    assert saves == [[]]  # a trial start never pays for rewriting every trial's entry
    tracker.on_experiment_end([trial(t) for t in ("a", "b", "c")])
    assert saves == [[], ["a", "b", "c"]]


def test_a_deferred_run_map_is_written_at_the_next_step_once_the_spacing_allows(tracker, tmp_path, monkeypatch):
    from raytune_suite.track.runmap import RunMap

    tracker, _ = tracker
    tracker.sweep_dir = str(tmp_path / "sweep")
    saves = []
    monkeypatch.setattr(RunMap, "save", lambda self, folder: saves.append(sorted(self.trials)))
    tracker._next_map_save = float("inf")
    tracker.on_trial_start(0, [], trial("a"))
    tracker._next_map_save = 0.0  # the spacing has passed
    tracker.on_step_end(0, [])
    tracker.on_step_end(0, [])  # nothing new: no second write
    assert saves == [["a"]]


def test_an_interrupted_sweep_still_writes_its_deferred_run_map(tracker, tmp_path):
    from raytune_suite.track.runmap import RunMap

    tracker, _ = tracker
    tracker.sweep_dir = str(tmp_path / "sweep")
    tracker._next_map_save = float("inf")
    tracker.on_trial_start(0, [], trial("a"))
    tracker.finish(RunStatus.KILLED)  # no on_experiment_end: the fit was cut short
    assert list(RunMap.load(tmp_path / "sweep").trials) == ["a"]


def test_node_tags_ride_with_the_epochs_metrics_and_follow_a_move(tracker):
    tracker, client = tracker
    tracker.on_trial_start(0, [], trial("a"))
    tracker.client.drain()
    before = tracker.client.stats.calls
    tracker.on_trial_result(0, [], trial("a"), result(1, 0.9, node_id="n1", hostname="h1"))
    tracker.on_trial_result(0, [], trial("a"), result(2, 0.8, node_id="n1", hostname="h1"))
    tracker.client.drain()
    assert tracker.client.stats.calls - before == 2  # one call per epoch, the first one's node tags included
    # moved to another node and replaying an epoch MLflow already holds: the tags alone
    tracker.on_trial_result(0, [], trial("a"), result(2, 0.8, node_id="n2", hostname="h2"))
    tracker.finish(RunStatus.FINISHED)
    run = client.get_run(tracker.records["a"].run_id)
    assert (run.data.tags["node_id"], run.data.tags["node_ids"], run.data.tags["hostname"]) == ("n2", "n1,n2", "h2")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
