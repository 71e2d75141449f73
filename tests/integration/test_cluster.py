"""A real two-node Ray cluster on this machine: sweeps submitted through the Jobs API, checked from MLflow.

The head and one worker node are separate `ray start --block` processes started by `cluster/local/` scripts (own
temp dirs, ports 16400-16559, token auth on), with an MLflow server on 127.0.0.1:16390. Each node offers 1 CPU and
each trial takes 1, so trials must spread over both nodes. Everything is stopped by process group, even on failure.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import EXPERIMENTS, REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPTS = REPO / "cluster" / "local"
PORT_BASE = 16400  # head: 16400-16459, worker 1: 16500-16559
MLFLOW_PORT = 16390
JOBS_API = f"http://127.0.0.1:{PORT_BASE + 1}"
RAY = str(Path(sys.executable).parent / "ray")
MLFLOW = str(Path(sys.executable).parent / "mlflow")
# Two trials at once on two 1-CPU nodes: the second cannot fit beside the first. The rendezvous experiment holds the
# first trial until the second has started (else, with actor reuse, a quick first trial on the head hands its process
# to every later trial while the worker node is still starting one). Small batches make epochs ~1 s, so a kill
# lands mid-trial.
SWEEP = ["--set", "experiment=tests.fixtures.rendezvous_experiment", "--set", "data.dataset=digits",
         "--set", "tune.scheduler=fifo", "--set", "tune.max_failures=3",
         "--set", "tune.max_concurrent=2", "--set", "train.batch_size=16",
         "--set", "space={train: {lr: {type: loguniform, low: 1e-3, high: 1e-2}}}"]  # fmt: skip
MEASURED: dict[str, float] = {}


def wait_for(check, timeout_s: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def cluster_env():
    state = tempfile.mkdtemp(prefix="rts-i4-cluster-")
    env = {**os.environ, "RTS_CLUSTER_DIR": state, "RTS_PORT_BASE": str(PORT_BASE), "RTS_NUM_CPUS": "1", "RAY": RAY}
    # The suite's code reaches the cluster in the job's working_dir, not through the caller's PYTHONPATH.
    env.pop("PYTHONPATH", None)
    yield env
    subprocess.run([str(SCRIPTS / "stop.sh")], env=env, timeout=120)
    shutil.rmtree(state, ignore_errors=True)


def script(env, *args: str) -> float:
    started = time.monotonic()
    subprocess.run([str(SCRIPTS / args[0]), *args[1:]], env=env, check=True, timeout=180)
    return time.monotonic() - started


def node_id_of(env, name: str) -> str:
    """A node's id, from the port file its raylet writes into the node's own temp dir (the newest: a restarted
    worker joins the head's session again, beside its predecessor's files)."""
    files = Path(env["RTS_CLUSTER_DIR"], name, "session_latest").glob("runtime_env_agent_port_*")
    return max(files, key=lambda f: f.stat().st_mtime).name.rsplit("_", 1)[1]


@pytest.fixture(scope="module")
def head(cluster_env):
    MEASURED["head_start_s"] = script(cluster_env, "start-head.sh")
    yield node_id_of(cluster_env, "head")


@pytest.fixture
def worker(cluster_env, head):
    MEASURED["worker_start_s"] = script(cluster_env, "start-worker.sh", "1")
    yield node_id_of(cluster_env, "worker-1")
    if Path(cluster_env["RTS_CLUSTER_DIR"], "worker-1.pid").exists():
        script(cluster_env, "stop.sh", "worker-1")


@contextlib.contextmanager
def running_mlflow_server(port: int):
    """An MLflow server on 127.0.0.1:`port` with its store in a temp folder, stopped by process group."""
    root = Path(tempfile.mkdtemp(prefix="rts-mlflow-"))
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = open(root / "server.log", "w")  # noqa: SIM115  (closed in the finally below)
    server = subprocess.Popen(
        [MLFLOW, "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--default-artifact-root", str(root / "artifacts")],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(uri) or server.poll() is not None, 90, "the MLflow server")
        assert server.poll() is None, (
            f"the MLflow server on port {port} exited: {(root / 'server.log').read_text()[-2000:]}"
        )
        yield uri, root
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_stack():
    """(URI, folder holding the server's sqlite store and artifacts)."""
    with running_mlflow_server(MLFLOW_PORT) as stack:
        yield stack


@pytest.fixture(scope="module")
def mlflow_server(mlflow_stack):
    return mlflow_stack[0]


def _healthy(uri: str) -> bool:
    try:
        return urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200
    except OSError:
        return False


def submit(cluster_env, uri: str, storage: Path, name: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_TOKEN_PATH": str(Path(cluster_env["RTS_CLUSTER_DIR"], "auth_token"))}
    return subprocess.Popen(
        [sys.executable, "-m", "raytune_suite.cli", "submit", str(EXPERIMENTS / "mnist_cnn.yaml"),
         "--address", JOBS_API, "--mlflow-uri", uri, "--storage", str(storage), "--set", f"run.name={name}",
         "--set", f"mlflow.experiment_name={name}", *SWEEP, *extra],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def children(client: MlflowClient, name: str):
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    return [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]


def test_submitting_without_the_clusters_token_is_refused_in_one_line(head, cluster_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    proc = subprocess.run(
        [sys.executable, "-m", "raytune_suite.cli", "submit", str(EXPERIMENTS / "mnist_cnn.yaml"),
         "--address", JOBS_API, "--mlflow-uri", "http://127.0.0.1:1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: --address {JOBS_API}: the cluster refused the request (Unauthorized: Missing authentication token); "
        "it needs a token: set RAY_AUTH_TOKEN_PATH to the file holding the cluster's token (or RAY_AUTH_TOKEN)"
    ]


def files_holding(secret: str, *roots: Path) -> list[str]:
    """Every file under `roots` whose bytes contain `secret` (sqlite stores and binary artifacts included)."""
    needle = secret.encode()
    return [str(f) for root in roots for f in root.rglob("*") if f.is_file() and needle in f.read_bytes()]


def test_a_submitted_sweep_runs_trials_on_both_nodes_and_mlflow_records_where(
    mlflow_stack, mlflow_server, head, worker, cluster_env, tmp_path
):
    client = MlflowClient(mlflow_server)
    started = time.monotonic()
    proc = submit(cluster_env, mlflow_server, tmp_path, "spread", "--num-samples", "4", "--set", "train.epochs=3")
    first = wait_for(lambda: any(r.data.metrics for r in children(client, "spread")) or proc.poll() is not None,
                     240, "the first trial result")  # fmt: skip
    MEASURED["submit_to_first_result_s"] = time.monotonic() - started
    out, _ = proc.communicate(timeout=300)
    MEASURED["spread_sweep_s"] = time.monotonic() - started
    print(f"\nMEASURED {MEASURED}\n" + "\n".join(line for line in out.splitlines() if line.startswith("[")))
    assert first and proc.returncode == 0, out[-4000:]
    assert "submitted job raysubmit_" in out and "SUCCEEDED" in out

    runs = children(client, "spread")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["node_id"] for r in runs} == {head, worker}, f"head {head}, worker {worker}"
    assert all(r.data.tags["hostname"] for r in runs)

    # The cluster's token never leaks: not in what submit printed (the job's command and logs included), not in the
    # MLflow store (params, tags, metrics in sqlite; artifacts), not in any log or job file of any node.
    state = Path(cluster_env["RTS_CLUSTER_DIR"])
    token = (state / "auth_token").read_text().strip()
    assert len(token) >= 32 and token not in out
    assert files_holding(token, mlflow_stack[1]) == []
    nodes = [state / name for name in ("head", "worker-1")]
    assert files_holding(token, *(n / "session_latest" / "logs" for n in nodes)) == []
    assert files_holding(token, tmp_path) == []  # the sweep's storage: results, checkpoints, the run map


def test_killing_the_worker_node_mid_sweep_still_completes_every_trial_from_its_checkpoint(
    mlflow_server, head, worker, cluster_env, tmp_path
):
    client = MlflowClient(mlflow_server)
    epochs = 30  # long enough (~10 s a trial) that the kill lands mid-trial even on an idle machine
    proc = submit(cluster_env, mlflow_server, tmp_path, "kill", "--num-samples", "3", "--set", f"train.epochs={epochs}")

    def trained_on_worker():
        return any(r.data.tags.get("node_id") == worker and r.data.metrics.get("epoch", 0) >= 2
                   for r in children(client, "kill"))  # fmt: skip

    wait_for(lambda: trained_on_worker() or proc.poll() is not None, 240, "a trial checkpointed on the worker")
    assert proc.poll() is None, "the sweep ended before the worker could be killed"
    subprocess.run([str(SCRIPTS / "stop.sh"), "worker-1"], env={**cluster_env, "RTS_SIGNAL": "KILL"}, check=True)
    killed = time.monotonic()
    out, _ = proc.communicate(timeout=400)
    MEASURED["after_node_kill_s"] = time.monotonic() - killed
    print(f"\nMEASURED {MEASURED}\n" + "\n".join(line for line in out.splitlines() if line.startswith("[")))
    assert proc.returncode == 0, out[-4000:]

    runs = children(client, "kill")
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags["epochs_trained"] == str(epochs) for r in runs)
    moved = [r for r in runs if r.data.tags["node_ids"] == f"{worker},{head}"]
    assert moved, ([r.data.tags["node_ids"] for r in runs], out[-3000:])
    for run in moved:  # resumed from its last checkpoint, not from scratch: at most the epoch in flight repeats
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "epoch")]
        assert sorted(set(steps)) == list(range(1, epochs + 1)) and steps.count(1) == 1, steps
        assert len(steps) - len(set(steps)) <= 1, steps
