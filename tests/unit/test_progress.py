from types import SimpleNamespace

from raytune_suite.config.objective import Objective
from raytune_suite.run.progress import ProgressPrinter


def trial(tid: str, status: str, epoch: int, acc: float):
    return SimpleNamespace(trial_id=tid, status=status, last_result={"epoch": epoch, "val_accuracy": acc}, path="/x")


def test_a_status_line_appears_between_trial_events_only_after_the_heartbeat(capsys):
    printer = ProgressPrinter(Objective("val_accuracy", "max"), total=4, max_epochs=5, heartbeat_s=0.0)
    a, b = trial("a", "RUNNING", 2, 0.9), trial("b", "RUNNING", 1, 0.8)
    printer.on_trial_result(0, [a, b], a, a.last_result)
    printer.on_step_end(0, [a, b])
    assert "status 2 running [a@2, b@1], 0/4 done, best 0.9000 (a)" in capsys.readouterr().out

    quiet = ProgressPrinter(Objective("val_accuracy", "max"), total=4, max_epochs=5, heartbeat_s=3600)
    quiet.on_step_end(0, [a, b])
    assert capsys.readouterr().out == ""


def test_completion_lines_say_whether_the_scheduler_stopped_the_trial(capsys):
    printer = ProgressPrinter(Objective("val_loss", "min"), total=2, max_epochs=5)
    early, full = trial("e", "TERMINATED", 1, 0.5), trial("f", "TERMINATED", 5, 0.9)
    early.last_result["val_loss"], full.last_result["val_loss"] = 0.7, 0.2
    for t in (early, full):
        printer.on_trial_result(0, [], t, t.last_result)
        printer.on_trial_complete(0, [], t)
    out = capsys.readouterr().out.splitlines()
    assert "stopped early e after 1 epoch(s): best val_loss=0.7000 at epoch 1  [1/2 done" in out[0]
    assert "finished      f after 5 epoch(s): best val_loss=0.2000 at epoch 5  [2/2 done, best 0.2000 (f)]" in out[1]


def test_a_finished_trial_shows_its_best_epoch_and_value_with_the_last_epochs_labelled_final(capsys):
    # Its line showed the last epoch (0.9580) while the best column counted its best epoch (0.9720).
    printer = ProgressPrinter(Objective("val_accuracy", "max"), total=1, max_epochs=3)
    t = trial("a", "TERMINATED", 3, 0.958)
    for epoch, value in ((1, 0.90), (2, 0.972), (3, 0.958)):
        printer.on_trial_result(0, [], t, {"epoch": epoch, "val_accuracy": value})
    printer.on_trial_complete(0, [], t)
    line = capsys.readouterr().out
    assert "finished      a after 3 epoch(s): best val_accuracy=0.9720 at epoch 2 (final 0.9580)" in line
    assert "[1/1 done, best 0.9720 (a)]" in line


def test_a_resumed_sweep_counts_on_from_the_trials_already_done_and_their_bests(capsys):
    # A resume printed "start x (0/4 done)" and ended at "2/4 done" while the summary counted 4 trials.
    printer = ProgressPrinter(
        Objective("val_accuracy", "max"), total=4, max_epochs=3, earlier={"a": (0.9, 2), "b": (0.5, 1)}
    )
    restored = [trial("a", "TERMINATED", 3, 0.8), trial("b", "TERMINATED", 1, 0.5), trial("c", "PENDING", 3, 0.4),
                trial("d", "PENDING", 0, 0.0)]  # fmt: skip
    printer.on_step_begin(0, restored)
    printer.on_step_begin(1, restored)  # counted once
    c = restored[2]
    printer.on_trial_start(0, restored, c)
    printer.on_trial_result(0, restored, c, {"epoch": 2, "val_accuracy": 0.95})
    printer.on_trial_complete(0, restored, c)
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("start  c  (2/4 done)")
    assert "best val_accuracy=0.9500 at epoch 2 (final 0.4000)  [3/4 done, best 0.9500 (c)]" in out[1]
    assert printer.early == 1  # b stopped after 1 of 3 epochs


def test_an_estimator_trial_shows_its_one_score():
    printer = ProgressPrinter(Objective("mean_test_score", "max"), total=1, max_epochs=1, step="cross-validation")
    t = SimpleNamespace(trial_id="s", status="TERMINATED", last_result={"training_iteration": 1,
                        "mean_test_score": 0.97}, path="/x")  # fmt: skip
    printer.on_trial_result(0, [], t, t.last_result)
    assert printer._outcome("s", t.last_result) == "mean_test_score=0.9700"


def many(total: int = 1000, **kw) -> ProgressPrinter:
    return ProgressPrinter(Objective("val_accuracy", "max"), total=total, max_epochs=3, **kw)


def test_a_sweep_of_many_trials_prints_summaries_not_a_line_per_trial(capsys):
    printer = many(summary_s=3600, heartbeat_s=3600)
    for i in range(200):
        t = trial(f"t{i}", "TERMINATED", 3, 0.5)
        printer.on_trial_start(0, [], t)
        printer.on_trial_complete(0, [], t)
        printer.on_step_end(0, [t])
    assert capsys.readouterr().out == ""  # nothing per trial, and no summary before summary_s

    printer.summary_s = 0.0
    running = [trial(f"r{i}", "RUNNING", 1, 0.5) for i in range(20)]
    printer.on_step_end(0, running)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert "status 20 running [r0@1, r1@1, r2@1, r3@1, r4@1, r5@1, r6@1, r7@1, +12 more], 200/1000 done" in out[0]
    assert "(0 failed, 0 stopped early), best n/a" in out[0]

    printer.on_step_end(0, running)  # nothing changed since: quiet until the heartbeat
    assert capsys.readouterr().out == ""


def test_a_small_sweep_keeps_its_line_per_trial(capsys):
    printer = ProgressPrinter(Objective("val_accuracy", "max"), total=50, max_epochs=3)
    t = trial("a", "TERMINATED", 3, 0.5)
    printer.on_trial_start(0, [], t)
    printer.on_trial_complete(0, [], t)
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_many_trials_still_show_each_new_best_the_first_failures_and_a_final_count(capsys):
    printer = many(summary_s=3600, heartbeat_s=3600)
    for value in (0.5, 0.4, 0.7):
        t = trial(f"v{value}", "TERMINATED", 3, value)
        for epoch_value in (value - 0.2, value - 0.1, value):  # a line per trial that ended best, not per epoch
            printer.on_trial_result(0, [], t, {**t.last_result, "val_accuracy": epoch_value})
        printer.on_trial_complete(0, [], t)
    early = trial("e", "TERMINATED", 1, 0.1)
    printer.on_trial_complete(0, [], early)
    for i in range(8):
        printer.on_trial_error(0, [], trial(f"f{i}", "ERROR", 1, 0.0))
    printer.on_experiment_end([])
    out = capsys.readouterr().out.splitlines()
    assert [line.split("] ", 1)[1] for line in out[:2]] == [
        "new best val_accuracy=0.5000 (v0.5) [1/1000 done]",
        "new best val_accuracy=0.7000 (v0.7) [3/1000 done]",
    ]
    assert sum("FAILED" in line for line in out) == 5 and "more trials failed" in out[7]
    assert out[-1].endswith("status 0 running [], 12/1000 done (8 failed, 1 stopped early), best 0.7000 (v0.7)")
    assert len(out) == 9


def test_a_trial_that_diverges_stops_being_the_best_shown(capsys):
    # Its last finite value stayed on the console as the best while MLflow and the summary left it out.
    printer = ProgressPrinter(Objective("val_loss", "min"), total=2, max_epochs=3)
    good, wild = trial("good", "RUNNING", 1, 0.0), trial("wild", "RUNNING", 1, 0.0)
    printer.on_trial_result(0, [], good, {"epoch": 1, "val_loss": 0.5})
    printer.on_trial_result(0, [], wild, {"epoch": 1, "val_loss": 0.1})
    assert printer._best() == "0.1000 (wild)"
    printer.on_trial_result(0, [], wild, {"epoch": 2, "val_loss": 1e30, "diverged": 1.0})
    printer.on_trial_result(0, [], wild, {"epoch": 3, "val_loss": 0.01})  # never again, whatever it reports
    assert printer._best() == "0.5000 (good)"
