"""The `raytune-suite` command as a child process whose output tests watch while it runs."""

import subprocess
import sys
import threading
import time

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
