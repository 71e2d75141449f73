"""The MLflow UI over a sweep's store: start it on 127.0.0.1, wait until it answers, point at the runs page.

`mlflow server` by default starts 4 uvicorn workers and 7 job-runner processes that can outlive a parent killed
early. One worker and `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false` keep it to two processes, started in a process
group of their own so that stopping it (Ctrl-C, SIGTERM) ends all of them and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from raytune_suite.errors import ConfigError, RunFailure

HOST = "127.0.0.1"
HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


@dataclass
class UiServer:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        """End the server's whole process group: TERM, then KILL if it lingers."""
        if self.process.poll() is not None:
            return
        pgid = self.process.pid  # start_new_session: the server leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_S)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) != 0


def start_server(tracking_uri: str, port: int) -> UiServer:
    """`mlflow server` on 127.0.0.1:port over `tracking_uri`; returns once /health answers."""
    from raytune_suite.check.preflight import port_in_range

    port_in_range(port, "--port")  # port 0 would bind a random port that the health check never finds
    if not port_is_free(port):
        raise ConfigError(f"--port {port}: something already listens there; pick another port")
    command = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
        "--host", HOST, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env={**os.environ, **SERVER_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    server = UiServer(process, f"http://{HOST}:{port}")
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (process.stderr.read() or "")[-2000:]
            raise RunFailure(f"mlflow server exited with code {process.returncode}: {tail.strip()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as reply:
                if reply.status == 200:
                    process.stderr.close()  # unread: a full pipe would block the server
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RunFailure(f"mlflow server did not answer {server.url}/health within {HEALTH_TIMEOUT_S:.0f}s")


def latest_experiment_id(tracking_uri: str) -> str | None:
    """The experiment of the most recently started run in the store (None for an empty store)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return None
    runs = client.search_runs(ids, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.experiment_id if runs else None


def runs_page(base_url: str, experiment_id: str | None) -> str:
    # MLflow 3's bare experiment URL opens a GenAI overview; the runs table lives under /runs.
    return f"{base_url}/#/experiments/{experiment_id}/runs" if experiment_id else base_url
