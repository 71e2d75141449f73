"""`submit` to a head that is still starting waits for its job agent (bounded), then fails in one line.

A tiny local HTTP server plays the head's Jobs API the way Ray 2.60's answered right after `ray start --head`:
connection refused while the dashboard starts, then `500: No available agent to submit job, please try again later`.
Ray's own `JobSubmissionClient` talks to it; nothing of Ray is mocked.
"""

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from raytune_suite.cluster import job_client, until_ready
from raytune_suite.errors import RunFailure

NO_AGENT = "No available agent to submit job, please try again later."


class JobsApi(BaseHTTPRequestHandler):
    """GET /api/version answers as Ray 2.60; POST /api/jobs/ answers 500 `fail_first` times, then accepts."""

    fail_first = 2
    posts = 0

    def do_GET(self):
        self._answer(200, {"version": "4", "ray_version": "2.60.0", "ray_commit": "x"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts += 1
        if type(self).posts <= self.fail_first:
            self._answer(500, NO_AGENT)
        else:
            self._answer(200, {"job_id": "raysubmit_ok", "submission_id": "raysubmit_ok"})

    def _answer(self, status: int, body):
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, fail_first: int) -> ThreadingHTTPServer:
    handler = type("Handler", (JobsApi,), {"fail_first": fail_first, "posts": 0})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_job_agent_that_is_not_ready_yet_is_retried_until_it_accepts(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    server = serve(port := free_port(), fail_first=2)
    said: list[str] = []
    try:
        client = job_client(f"http://127.0.0.1:{port}", say=said.append)
        job = until_ready(lambda: client.submit_job(entrypoint="true"), "ADDR", 30, said.append, every_s=0.05)
    finally:
        server.shutdown()
    assert job == "raysubmit_ok" and server.RequestHandlerClass.posts == 3
    # One progress line, not one per retry.
    # The seconds waited before the first failure: 0 unless a busy machine stalls the first round trip.
    assert len(said) == 1 and re.fullmatch(
        rf"waiting for the cluster's job agent \(\d+ s of at most 30: Request failed with status code 500: "
        rf"{re.escape(NO_AGENT[:-1])}\)",
        said[0],
    ), said


def test_a_dashboard_that_starts_listening_late_is_waited_for(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    port = free_port()
    servers = []
    threading.Timer(1.0, lambda: servers.append(serve(port, fail_first=0))).start()
    said: list[str] = []
    started = time.monotonic()
    try:
        client = job_client(f"http://127.0.0.1:{port}", say=said.append, every_s=0.2)
    finally:
        time.sleep(1.2)  # let the timer's server exist before stopping it
        for server in servers:
            server.shutdown()
    assert client is not None and 0.9 < time.monotonic() - started < 10
    assert len(said) == 1 and re.match(r"waiting for the cluster's job agent \(\d+ s of at most 60:", said[0]), said


def test_a_head_that_never_gets_ready_fails_in_one_line_after_the_bound():
    port = free_port()  # nothing listens there
    said: list[str] = []
    with pytest.raises(RunFailure) as failure:
        job_client(f"http://127.0.0.1:{port}", wait_s=0.5, every_s=0.1, say=said.append)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"--address http://127.0.0.1:{port}: the cluster's job agent was not ready after ")
    assert "Failed to connect to Ray at address" in message and said


def test_other_errors_are_not_retried():
    calls = []

    def bad_request():
        calls.append(1)
        raise RuntimeError("Request failed with status code 400: bad runtime_env.")

    with pytest.raises(RuntimeError, match="400"):
        until_ready(bad_request, "ADDR", 30, print, every_s=0.01)
    assert calls == [1]


def test_a_head_that_answers_gets_the_longer_window_and_one_line(monkeypatch):
    # A healthy head on a loaded machine: its job agent registers after the window for a head that does not answer.
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    server = serve(port := free_port(), fail_first=20)
    said: list[str] = []
    started = time.monotonic()
    try:
        client = job_client(f"http://127.0.0.1:{port}", say=said.append)
        submit = lambda: client.submit_job(entrypoint="true")  # noqa: E731
        job = until_ready(submit, "ADDR", 0.3, said.append, every_s=0.05, head_up_wait_s=30)
    finally:
        server.shutdown()
    assert job == "raysubmit_ok" and time.monotonic() - started > 0.3
    assert len(said) == 1 and "of at most 30:" in said[0], said
