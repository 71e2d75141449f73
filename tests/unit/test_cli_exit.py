"""How the console script ends: fast, and without skipping the clean-up that matters."""

import signal
import subprocess
import sys
import time

import pytest

EXITING = """
import atexit, gc
gc.disable()  # no collection before the exit's: the cycle below is left for it
from raytune_suite.cli import skip_final_collection

class Cyclic:
    def __del__(self):
        print("collected at exit", flush=True)

loop = Cyclic(); loop.me = loop; del loop  # garbage only a collection can free
atexit.register(print, "atexit handler ran")
with open({path!r}, "w") as out:
    out.write("written")
skip_final_collection()
"""


def test_the_exit_skips_the_final_collection_but_still_runs_atexit_handlers(tmp_path):
    path = str(tmp_path / "out.txt")
    out = subprocess.run([sys.executable, "-c", EXITING.format(path=path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "atexit handler ran" in out.stdout
    assert "collected at exit" not in out.stdout  # the collection that took 1.3 s of a sweep's command was skipped
    assert (tmp_path / "out.txt").read_text() == "written"


CONSOLE_SCRIPT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
sys.argv = ["raytune-suite", "validate", {config!r}]
from raytune_suite.cli import entry
entry()
"""


def test_the_console_script_skips_the_final_collection_whatever_its_exit_code(tmp_path):
    missing = str(tmp_path / "missing.yaml")  # exit 2: a bad input ends through the same path
    code = CONSOLE_SCRIPT.format(config=missing)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "frozen at exit: True" in out.stdout


def test_a_sigterm_while_the_command_starts_is_a_stop_like_any_other(tmp_path):
    # It died of the signal (143, nothing said) before `run` installed its handlers, ~1.5 s into the command.
    config = tmp_path / "c.yaml"
    config.write_text("experiment: diabetes_linear\n")
    command = subprocess.Popen([sys.executable, "-m", "raytune_suite.cli", "run", str(config)], cwd=tmp_path,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(1.0)  # importing and checking the config
    command.send_signal(signal.SIGTERM)
    _, err = command.communicate(timeout=60)
    assert command.returncode == 130 and "interrupted" in err, (command.returncode, err[-2000:])


def test_a_stop_during_an_experiment_import_is_raised_when_the_import_is_done():
    # Raised inside `import torch`, the KeyboardInterrupt crossed torch's C++ initialisation: SIGABRT, 2 in 20 stops.
    import os

    from raytune_suite.run.stops import request_stop, stops_held

    previous = signal.signal(signal.SIGTERM, request_stop)
    reached_the_end = False
    try:
        with pytest.raises(KeyboardInterrupt), stops_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs here, between bytecodes, and only records the request
            reached_the_end = True
        assert reached_the_end
        with pytest.raises(KeyboardInterrupt):  # outside a hold a stop is raised at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_inside_any_import_is_raised_after_the_import(tmp_path, monkeypatch):
    # A KeyboardInterrupt inside importlib's bookkeeping once left a module lock held: the stopped command went on
    # and hung on that lock in its next import.

    from raytune_suite.run.stops import request_stop

    (tmp_path / "slow_module.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\n"
                                             "time.sleep(0.3)\nFINISHED = True\n")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            import slow_module  # noqa: F401

            time.sleep(2)  # the stop, sent again after the import, lands here
        assert sys.modules["slow_module"].FINISHED  # the import itself was not cut short
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.modules.pop("slow_module", None)


def test_a_stop_is_held_by_an_import_that_hangs_only_for_the_hold_limit(monkeypatch):
    # Held for good, a stop could never end a command whose import hangs.
    import os

    from raytune_suite.run import stops

    monkeypatch.setattr(stops, "HOLD_LIMIT_S", 0.5)
    previous = signal.signal(signal.SIGTERM, stops.request_stop)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt), stops.stops_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # an import that does not return
        assert 0.4 < time.monotonic() - started < 3
    finally:
        signal.signal(signal.SIGTERM, previous)
