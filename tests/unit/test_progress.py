from types import SimpleNamespace

from raytune_suite.progress import ProgressPrinter


def trial(tid: str, status: str, epoch: int, acc: float):
    return SimpleNamespace(trial_id=tid, status=status, last_result={"epoch": epoch, "val_accuracy": acc}, path="/x")


def test_a_status_line_appears_between_trial_events_only_after_the_heartbeat(capsys):
    printer = ProgressPrinter("val_accuracy", "max", total=4, max_epochs=5, heartbeat_s=0.0)
    a, b = trial("a", "RUNNING", 2, 0.9), trial("b", "RUNNING", 1, 0.8)
    printer.on_trial_result(0, [a, b], a, a.last_result)
    printer.on_step_end(0, [a, b])
    assert "status 2 running [a@2, b@1], 0/4 done, best 0.9000 (a)" in capsys.readouterr().out

    quiet = ProgressPrinter("val_accuracy", "max", total=4, max_epochs=5, heartbeat_s=3600)
    quiet.on_step_end(0, [a, b])
    assert capsys.readouterr().out == ""


def test_completion_lines_say_whether_the_scheduler_stopped_the_trial(capsys):
    printer = ProgressPrinter("val_loss", "min", total=2, max_epochs=5)
    early, full = trial("e", "TERMINATED", 1, 0.5), trial("f", "TERMINATED", 5, 0.9)
    early.last_result["val_loss"], full.last_result["val_loss"] = 0.7, 0.2
    for t in (early, full):
        printer.on_trial_result(0, [], t, t.last_result)
        printer.on_trial_complete(0, [], t)
    out = capsys.readouterr().out.splitlines()
    assert "stopped early e after 1 epoch(s): val_loss=0.7000  [1/2 done" in out[0]
    assert "finished      f after 5 epoch(s): val_loss=0.2000  [2/2 done, best 0.2000 (f)]" in out[1]
