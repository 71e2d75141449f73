"""A real `mlflow server` for tests: on 127.0.0.1 over a SQLite store in the test's folder, killed with SIGKILL (an
outage as a crashed host or an OOM kill makes it) and started again on the same store and port.

One uvicorn worker and no job runners (STACK_NOTES.md): two processes in their own session, so a kill of the
process group takes the whole server and nothing of it outlives the test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """Args: root: folder of the store (`mlflow.db`), its artifacts and the server's log; port: on 127.0.0.1."""

    def __init__(self, root: Path, port: int | None = None):
        self.root, self.port = Path(root), port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.store = f"sqlite:///{self.root / 'mlflow.db'}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 120) -> float:
        """Start it and wait until /health answers; returns the seconds that took."""
        started = time.monotonic()
        self.starts += 1
        log = open(self.root / f"server-{self.starts}.log", "w")  # noqa: SIM115  (the child holds it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--workers", "1", "--host", "127.0.0.1",
             "--port", str(self.port), "--backend-store-uri", self.store,
             "--artifacts-destination", str(self.root / "artifacts")],
            env={**os.environ, **SERVER_ENV}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mlflow server exited {self.process.returncode}: {self.log()[-2000:]}")
            if self.healthy():
                return time.monotonic() - started
            time.sleep(0.3)
        self.kill()
        raise AssertionError(f"mlflow server not healthy within {timeout:.0f} s: {self.log()[-2000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return (self.root / f"server-{self.starts}.log").read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the server's process group, as an outage would end it; waits for it to be gone."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL if it lingers."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None
