"""The `raytune-suite` command as a child process whose output tests watch while it runs."""

import signal
import subprocess
import sys
import threading
import time

import pytest

CLI = [sys.executable, "-m", "raytune_suite.cli"]


def start_cli(args: list[str], **popen) -> tuple[subprocess.Popen, list[str]]:
    """Start `raytune-suite ARGS`; its stdout and stderr are collected line by line into the returned list."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    lines: list[str] = []

    def collect():
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=collect, daemon=True).start()
    return proc, lines


def wait_for_lines(proc: subprocess.Popen, lines: list[str], text: str, count: int, timeout: float) -> None:
    """Until `count` lines contain `text`; fails early, with the output's tail, if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(text in line for line in lines) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {count} lines with {text!r} (exit code {proc.poll()}): {''.join(lines[-20:])}")


def wait_or_dump_stacks(driver: subprocess.Popen, lines: list[str], timeout: float) -> int:
    """The driver's exit code; if it is still running after `timeout`, fail with every thread's stack."""
    try:
        return driver.wait(timeout)
    except subprocess.TimeoutExpired:
        driver.send_signal(signal.SIGUSR1)  # the CLI's faulthandler prints each thread's stack
        time.sleep(3)
        pytest.fail(f"still running after {timeout:.0f} s; its output and stacks:\n{''.join(lines)[-8000:]}")
