"""An S3-compatible server for tests: `moto` in server mode on 127.0.0.1, a free port, a subprocess stopped by PID.

`s3_server` (module scope) starts it, creates a bucket and yields an `S3Server` whose `env` holds what pyarrow and
Ray need to use it (credentials, region, `AWS_ENDPOINT_URL_S3`). It does not touch `os.environ`: tests decide which
processes get the variables (the driver's environment, or `ray.init(runtime_env={"env_vars": ...})`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

BUCKET = "sweeps"


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    bucket: str
    env: dict[str, str] = field(default_factory=dict)

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(endpoint: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"moto server at {endpoint} not up after {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Its own session, so that stopping it by PID group takes any child it spawned, and nothing else.
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(endpoint, proc)
        server = S3Server(endpoint, BUCKET, env={
            # moto accepts any credentials; real ones must never reach a test.
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": endpoint,
        })  # fmt: skip
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
