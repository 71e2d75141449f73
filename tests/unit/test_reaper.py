"""The watcher ends what a driver killed outright leaves (real processes, no Ray): reaper.py."""

import os
import signal
import subprocess
import sys
import time

import pytest

from raytune_suite.run import reaper

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux /proc")

DRIVER = """
import subprocess, sys, time
from raytune_suite.run.reaper import follow
follow()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_the_processes_of_a_driver_killed_outright_are_ended():
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    noted: dict[int, str] = {}
    try:
        child = int(driver.stdout.readline())  # its own session: a group kill would miss it
        time.sleep(reaper.SNAPSHOT_S + 1.5)  # noted by the watcher
        noted = reaper.descendants(driver.pid)
        assert child in noted and len(noted) == 2  # the child and the watcher
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 10
        while reaper.alive(noted) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not reaper.alive(noted), "still alive 10 s after the driver's SIGKILL"
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in reaper.alive(noted):  # what this test started, if the watcher failed
            os.kill(pid, signal.SIGKILL)
