"""Re-attaching to a killed sweep's MLflow runs (real store, no Ray): back-fill, open runs, orphans."""

import json
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from raytune_suite.config.objective import Objective
from raytune_suite.errors import ConfigError
from raytune_suite.track import store, tracking
from raytune_suite.track.runmap import RUN_MAP_FILE, RunMap


@pytest.fixture
def killed_sweep(tmp_path):
    """A parent and two child runs as a SIGKILLed driver leaves them: RUNNING, MLflow behind Ray's result.json."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = store.experiment_id_for(client, "resume-test", uri)
    parent = client.create_run(experiment_id, run_name="sweep").info.run_id
    runs = {}
    for trial_id in ("aaaa", "bbbb"):
        run = client.create_run(experiment_id, run_name=trial_id, tags={"mlflow.parentRunId": parent})
        runs[trial_id] = run.info.run_id
        client.log_batch(run.info.run_id, metrics=[Metric("val_accuracy", 0.1 * s, 0, s) for s in (1, 2)])
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "trial_aaaa").mkdir(parents=True)
    results = [json.dumps({"epoch": e, "val_accuracy": 0.1 * e, "training_iteration": e}) for e in (1, 2, 3, 4)]
    (sweep_dir / "trial_aaaa" / "result.json").write_text("\n".join(results) + '\n{"epoch": 5, "val_')  # cut short
    run_map = {"parent_run_id": parent, "tracking_uri": uri, "trials": runs, "configs": {}}
    (sweep_dir / RUN_MAP_FILE).write_text(json.dumps(run_map))
    return client, sweep_dir, parent, runs


def test_attach_backfills_what_ray_recorded_and_reopens_the_parent(killed_sweep):
    client, sweep_dir, parent, runs = killed_sweep
    tracker = tracking.MlflowTracker.attach(client, sweep_dir, Objective("val_accuracy", "max"), max_epochs=4)

    steps = [m.step for m in client.get_metric_history(runs["aaaa"], "val_accuracy")]
    assert steps == [1, 2, 3, 4]  # 3 and 4 from result.json, the torn last line ignored
    assert tracker.records["aaaa"].last_step == 4 and tracker.records["bbbb"].last_step == 2
    assert tracker.records["aaaa"].best == pytest.approx(0.4)
    assert tracker.open_runs == set(runs.values())  # still RUNNING: resumed trials reopen them, the rest get KILLED
    assert client.get_run(parent).info.status == "RUNNING"
    assert client.get_run(parent).data.tags["resumes"] == "1"
    assert json.loads((sweep_dir / RUN_MAP_FILE).read_text())["resumes"] == 1


def test_runs_of_trials_the_restored_experiment_forgot_are_deleted(killed_sweep):
    client, sweep_dir, _, runs = killed_sweep
    tracker = tracking.MlflowTracker.attach(client, sweep_dir, Objective("val_accuracy", "max"), max_epochs=4)

    tracker._drop_orphans(known={"aaaa"})
    assert tracker.orphans == ["bbbb"] and set(tracker.records) == {"aaaa"}
    assert client.get_run(runs["bbbb"]).info.lifecycle_stage == "deleted"
    assert json.loads((sweep_dir / RUN_MAP_FILE).read_text())["trials"] == {"aaaa": runs["aaaa"]}


def test_resuming_a_folder_without_a_run_map_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"no mlflow_runs\.json in that folder"):
        RunMap.load(tmp_path)


def test_an_orphaned_run_says_killed_in_its_status_tag_too(killed_sweep):
    client, sweep_dir, _, runs = killed_sweep
    tracker = tracking.MlflowTracker.attach(client, sweep_dir, Objective("val_accuracy", "max"), max_epochs=4)

    tracker._drop_orphans(known={"aaaa"})
    orphan = client.get_run(runs["bbbb"])
    assert orphan.info.status == "KILLED" and orphan.data.tags["status"] == "KILLED"
    assert "orphaned" in orphan.data.tags


def test_a_resumed_sweep_never_logs_the_parents_best_twice_at_one_step(killed_sweep):
    """The interrupted session's best was trial aaaa's epoch 4; after the resume trial bbbb is better at its own
    epoch 4. Logged at the best's epoch, step 4 would hold two values (seen after SIGTERM + resume)."""
    client, sweep_dir, parent, _ = killed_sweep
    interrupted = tracking.MlflowTracker.attach(client, sweep_dir, Objective("val_accuracy", "max"), max_epochs=4)
    interrupted.finish(tracking.RunStatus.KILLED)

    resumed = tracking.MlflowTracker.attach(client, sweep_dir, Objective("val_accuracy", "max"), max_epochs=4)
    trial = SimpleNamespace(trial_id="bbbb", config={})
    for epoch in (3, 4):
        resumed.on_trial_result(0, [], trial, {"epoch": epoch, "val_accuracy": 0.9, "training_iteration": epoch})
    resumed.record_best()
    resumed.finish(tracking.RunStatus.FINISHED)  # records the best once more: nothing new to log

    history = client.get_metric_history(parent, "best_val_accuracy")
    assert [(m.step, m.value) for m in history] == [(6, pytest.approx(0.4)), (8, pytest.approx(0.9))]
