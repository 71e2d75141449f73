"""Ray's processes follow the driver: a small watcher process ends what a dead driver's local Ray instance left.

Why: Ray starts the processes of a local instance (GCS, raylet, dashboard, monitors) with the kernel's parent-death
signal, so they die with the driver, and trial workers die with the raylet. But the raylet's own children, the
dashboard agent and the runtime-env agent, notice the raylet's death and then hang reporting it to the GCS, which
died too: after a driver's SIGKILL both were still alive 60 s later (measured here, Ray 2.60; every other process
of the driver's was gone within 5 s). `ray.shutdown()` never runs after a SIGKILL, nor after a stop that hit its
deadline (`sweep.StopDeadline`).

How: `follow(pid)` starts `python -m raytune_suite.run.reaper PID` in its own session, holding the read end of a
pipe whose write end only the driver holds. While the driver lives, the watcher notes its descendants (pid and start
time, from /proc) every `SNAPSHOT_S`; when the pipe reports end-of-file (the driver is gone, however it ended) it
sends SIGTERM to each noted process still alive with the same start time (never a reused pid), then SIGKILL after
`GRACE_S`, and exits. Linux only (/proc); elsewhere `follow` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

# Seconds between notes of the driver's processes: trial workers started since the last note die with the raylet.
SNAPSHOT_S = 2.0
# Seconds the noted processes get after SIGTERM before SIGKILL.
GRACE_S = 2.0


def follow() -> subprocess.Popen | None:
    """Start the watcher of this process, once per process (a program that runs several sweeps needs one). The
    pipe's write end stays open here (not inherited by the processes it starts later) until this process ends."""
    if not os.path.isdir("/proc") or _watchers:
        return None
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "raytune_suite.run.reaper", str(os.getpid())],
        stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
    )  # fmt: skip
    os.close(read_end)
    _watchers.append((watcher, write_end))  # the write end is never closed: its end is the driver's end
    return watcher


_watchers: list[tuple[subprocess.Popen, int]] = []


def _stat(pid: int) -> tuple[int, str]:
    """(parent pid, start time) of a process, from /proc/PID/stat (the command name may hold spaces or ')')."""
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below `root` now: pid -> its start time."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parent, start = _stat(int(name))
            except (OSError, ValueError, IndexError):  # gone meanwhile
                continue
            children.setdefault(parent, []).append(int(name))
            started[int(name)] = start
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = started[child]
            todo.append(child)
    return found


def alive(noted: dict[int, str]) -> list[int]:
    """The noted processes still running as themselves (same start time; zombies count as gone)."""
    living = []
    for pid, start in noted.items():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            if _stat(pid)[1] == start and state != "Z":
                living.append(pid)
        except (OSError, IndexError):
            continue
    return living


def end(noted: dict[int, str]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive(noted):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_S
        while alive(noted) and time.monotonic() < deadline:
            time.sleep(0.1)


def watch(driver_pid: int) -> None:
    noted: dict[int, str] = {}
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], SNAPSHOT_S)
        if ready and not os.read(sys.stdin.fileno(), 4096):  # end of file: the driver is gone
            end(noted)
            return
        noted.update(descendants(driver_pid))
        noted.pop(os.getpid(), None)  # the watcher is the driver's child too
        noted = {pid: start for pid, start in noted.items() if pid in alive({pid: start})}


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal's group is the driver's to handle
    watch(int(sys.argv[1]))
