"""Submitting a sweep to a Ray cluster through Ray's Jobs API (`JobSubmissionClient`).

`submit` validates the config here, then ships a *staged copy* of the project as the job's `runtime_env`
working_dir: the package and experiments (without venvs, results, MLflow stores or git history) plus the resolved
config as `submitted_config.yaml`, so the cluster runs exactly what was validated, overrides included. The job's
entrypoint is `python -m raytune_suite.cli run submitted_config.yaml --address auto`: the sweep's driver runs on the
head node and is the only process that talks to MLflow, which therefore must be a server the head can reach.

Authentication: with token auth on (every script in `cluster/` turns it on), the Jobs API wants
`Authorization: Bearer <token>`. The token comes from `$RAY_AUTH_TOKEN` or the file `$RAY_AUTH_TOKEN_PATH`,
never from the command line (it would land in shell history and `ps`), and is never printed.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from raytune_suite.config import ExperimentConfig
from raytune_suite.errors import ConfigError, RunFailure

SUBMITTED_CONFIG = "submitted_config.yaml"
# Never shipped: environments, results, local MLflow stores, caches and VCS data (Ray caps a working_dir at 500 MiB).
EXCLUDES = (".venv", "venv", ".git", ".gitignore", "ray_results", "mlruns", "mlartifacts", "*.db", "__pycache__",
            "*.pyc", ".pytest_cache", ".ruff_cache", "*.egg-info", "build", "dist", "node_modules")  # fmt: skip
# Ray's default storage, expanded on the head node: a relative path would live inside the job's working_dir and
# vanish with it. On a multi-machine cluster, pass shared storage (NFS path, s3://, gs://) instead.
DEFAULT_CLUSTER_STORAGE = "~/ray_results"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
# Right after `ray start --head` the dashboard refuses connections for a moment, then its Jobs API answers
# `500: No available agent to submit job` until the head's job agent registers. Bounded, so a wrong address fails too:
# AGENT_WAIT_S while nothing answers; once the head answers (a 5xx: it is up, its agent not yet), up to
# HEAD_UP_WAIT_S, as a healthy head on a loaded machine missed the 60 s window.
AGENT_WAIT_S = 60.0
HEAD_UP_WAIT_S = 300.0


def cluster_storage(configured: str) -> str:
    """The config's `run.storage` if it already means the same on the cluster (absolute, ~, URI), else the default."""
    if "://" in configured or configured.startswith(("/", "~")):
        return configured
    return DEFAULT_CLUSTER_STORAGE


def auth_headers(env: dict[str, str] | None = None) -> dict[str, str]:
    """`Authorization: Bearer` from $RAY_AUTH_TOKEN, else the file named by $RAY_AUTH_TOKEN_PATH; {} if neither."""
    env = os.environ if env is None else env
    token = env.get("RAY_AUTH_TOKEN", "").strip()
    if not token and (path := env.get("RAY_AUTH_TOKEN_PATH")):
        try:
            token = Path(path).expanduser().read_text().strip()
        except OSError as err:
            raise ConfigError(f"RAY_AUTH_TOKEN_PATH: cannot read {path} ({err.strerror}); fix the path") from None
    return {"Authorization": f"Bearer {token}"} if token else {}


def cluster_config(cfg: ExperimentConfig, working_dir: Path, tracking_uri: str, storage: str) -> dict[str, Any]:
    """The resolved config as the cluster will read it: paths relative to the working dir, MLflow server, storage."""
    from raytune_suite.track.store import is_local_uri

    if is_local_uri(tracking_uri):
        raise ConfigError(
            f"mlflow.tracking_uri: {tracking_uri} is local to this machine, but the sweep runs on a cluster; "
            "pass --mlflow-uri http://HOST:5000 of a server the head node can reach"
        )
    raw = cfg.model_dump(mode="json", exclude_none=True)
    if raw["experiment"].endswith(".py"):
        path = Path(raw["experiment"])
        if not path.is_relative_to(working_dir):
            raise ConfigError(
                f"experiment: {path} is outside the working dir {working_dir}, so the cluster would not get it; "
                "run submit from a folder that contains it, or pass --working-dir"
            )
        raw["experiment"] = str(path.relative_to(working_dir))
    raw["mlflow"] = {**raw.get("mlflow", {}), "tracking_uri": tracking_uri}
    raw["run"] = {**raw.get("run", {}), "storage": storage}
    return raw


def stage_working_dir(working_dir: Path, config: dict[str, Any], dest: Path) -> Path:
    """Copy the project without its heavy or private parts into `dest` and add the resolved config."""
    shutil.copytree(working_dir, dest, ignore=shutil.ignore_patterns(*EXCLUDES), symlinks=False, dirs_exist_ok=True)
    (dest / SUBMITTED_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def entrypoint() -> str:
    return shlex.join(["python", "-m", "raytune_suite.cli", "run", SUBMITTED_CONFIG, "--address", "auto"])


def job_client(address: str, *, wait_s: float = AGENT_WAIT_S, say: Callable[[str], None] = print, every_s: float = 2.0):
    """A `JobSubmissionClient` for `address`; while the head's dashboard is still starting (connection refused),
    retry for up to `wait_s`. A refused token is a config error (exit 2), an unreachable address a `RunFailure`."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    headers = auth_headers()
    try:
        return until_ready(
            lambda: JobSubmissionClient(address, headers=headers), address, wait_s, say, every_s, HEAD_UP_WAIT_S
        )
    except AuthenticationError as err:
        problem = str(err).split(": ", 1)[-1].splitlines()[0]
        hint = "a valid token" if headers else "a token"
        raise ConfigError(
            f"--address {address}: the cluster refused the request ({problem}); it needs {hint}: set "
            "RAY_AUTH_TOKEN_PATH to the file holding the cluster's token (or RAY_AUTH_TOKEN)"
        ) from None


def still_starting(err: BaseException) -> bool:
    """A head that is up but not ready yet: its dashboard refuses connections, or its Jobs API answers 5xx
    (`500: No available agent to submit job, please try again later` for a few seconds after `ray start --head`).
    Ray's client raises a plain ConnectionError for the first, RuntimeError("...status code 5xx...") for the other."""
    if isinstance(err, ConnectionError):
        return True
    return isinstance(err, RuntimeError) and "Request failed with status code 5" in str(err)


def until_ready(
    call: Callable[[], Any],
    address: str,
    wait_s: float,
    say: Callable[[str], None],
    every_s: float = 2.0,
    head_up_wait_s: float | None = None,
):
    """`call()`, retried every `every_s` while the cluster is still starting, for at most `wait_s`, or
    `head_up_wait_s` once the head answers (a 5xx); then one line. Waiting says so in one line, which a terminal
    sees updated in place."""
    started = time.monotonic()
    said = False
    while True:
        try:
            return call()
        except (ConnectionError, RuntimeError) as err:
            if not still_starting(err):
                raise
            if head_up_wait_s is not None and not isinstance(err, ConnectionError):  # the head answered
                wait_s = max(wait_s, head_up_wait_s)
            waited = time.monotonic() - started
            reason = str(err).splitlines()[0].rstrip(".")
            if waited + every_s > wait_s:
                raise RunFailure(
                    f"--address {address}: the cluster's job agent was not ready after {waited:.0f}s ({reason}); "
                    "check that the head is running and the address is its dashboard port (8265 by default)"
                ) from None
            line = f"waiting for the cluster's job agent ({waited:.0f} s of at most {wait_s:.0f}: {reason})"
            if not said:
                say(line)
                said = True
            elif say is print and sys.stdout.isatty():
                sys.stdout.write(f"\x1b[1A\r\x1b[2K{line}\n")  # the same line, rewritten
                sys.stdout.flush()
            time.sleep(every_s)


def submit(
    cfg: ExperimentConfig,
    address: str,
    *,
    tracking_uri: str,
    storage: str = DEFAULT_CLUSTER_STORAGE,
    working_dir: Path | None = None,
    wait: bool = True,
    say: Callable[[str], None] = print,
) -> int:
    """Submit the sweep as a Ray job; with `wait`, stream its logs and return 0 if it SUCCEEDED, else 1."""
    working_dir = (working_dir or Path.cwd()).resolve()
    config = cluster_config(cfg, working_dir, tracking_uri, storage)
    client = job_client(address, say=say)
    with tempfile.TemporaryDirectory(prefix="rts-submit-") as tmp:
        staged = stage_working_dir(working_dir, config, Path(tmp) / "project")
        runtime_env = {
            "working_dir": str(staged),
            # Unbuffered, so `tail_job_logs` shows progress lines as they happen; quiet telemetry on the cluster too.
            "env_vars": {"PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"},
        }
        submitted = time.monotonic()
        job_id = until_ready(
            lambda: client.submit_job(entrypoint=entrypoint(), runtime_env=runtime_env, metadata={"sweep": cfg.name}),
            address, AGENT_WAIT_S, say, head_up_wait_s=HEAD_UP_WAIT_S,
        )  # fmt: skip
    say(f"submitted job {job_id} to {address} (MLflow: {tracking_uri})")
    # Ray's own CLI sends the token only in token mode (RAY_AUTH_TOKEN_PATH / RAY_AUTH_TOKEN as for submit).
    ray_job = f"RAY_AUTH_MODE=token ray job {{}} {job_id} --address {address}"
    if not wait:
        say(f"follow it: {ray_job.format('logs --follow')}; stop it: {ray_job.format('stop')}")
        return 0
    try:
        asyncio.run(_stream_logs(client, job_id))
    except KeyboardInterrupt:
        say(f"detached; job {job_id} keeps running; stop it: {ray_job.format('stop')}")
        return 130
    status = wait_for_end(client, job_id)
    say(f"job {job_id} {status} after {time.monotonic() - submitted:.1f}s")
    return 0 if status == "SUCCEEDED" else 1


async def _stream_logs(client, job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def wait_for_end(client, job_id: str, timeout_s: float = 60.0) -> str:
    """The job's terminal status (the log stream can close a moment before the status flips)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id).value)
        if status in TERMINAL or time.monotonic() > deadline:
            return status
        time.sleep(0.5)
