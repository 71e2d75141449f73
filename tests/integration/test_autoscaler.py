"""An autoscaling cluster as the shipped configs make it (0-CPU head, workers from 0), on one machine.

Ray's fake multi-node provider launches "nodes" as extra raylets on this host (`RAY_FAKE_CLUSTER=1`): a head with
0 CPUs, its own temp dir, ports 16600-16659 and token auth, and one worker type of 1 CPU from 0 to 2 nodes. Before
`plan_concurrency`, a sweep there ran 1 trial at a time, so the autoscaler launched 1 worker; now the sweep asks for
both and trials run on both at once. Everything is stopped by process group (never `ray stop`, which would kill
other users' Ray processes; `ray.cluster_utils.AutoscalingCluster` calls it, so it is not used).

The sweep joins with `run --address`, not `submit`: the fake nodes share the head's temp dir (Ray gives a worker node
the head's when none is set, and the fake provider sets none), so a worker node's runtime-env agent replaces the
job's working dir under the head's driver. Measured: a submitted sweep ran its 4 trials 2 at a time on both workers,
then its driver failed on `os.getcwd()`. On real nodes, each with its own temp dir (cluster/local/), submit works
(test_cluster.py).
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import EXPERIMENTS, REPO
from tests.integration.test_cluster import running_mlflow_server, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MLFLOW_PORT = 16690  # its own: test_cluster.py's 16390 may be in use by a parallel run of that test
PORT = 16600  # GCS; dashboard/Jobs API +1, Ray Client +2, the head's raylet +3..+8, its workers +10..+59
RAY = str(Path(sys.executable).parent / "ray")
WORKER_TYPE, MAX_WORKERS = "worker_1cpu", 2
# The fake provider tags its head with this type; any other name makes the autoscaler try to add a "head" forever.
HEAD_TYPE = "ray.head.default"
# Four 1-CPU trials; the rendezvous experiment holds each trial until a second one has started, so with actor reuse
# a quick first trial cannot take every later trial onto the first node that came up (tests/fixtures).
SWEEP = ["--num-samples", "4", "--set", "experiment=tests.fixtures.rendezvous_experiment",
         "--set", "data.dataset=digits", "--set", "tune.scheduler=fifo", "--set", "train.epochs=2",
         "--set", "space={train: {lr: {type: loguniform, low: 1e-3, high: 1e-2}}}"]  # fmt: skip
MEASURED: dict[str, float] = {}


def autoscaler_config() -> dict:
    return {
        "cluster_name": "rts-fake",
        "max_workers": MAX_WORKERS,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,  # longer than the sweep: no worker is taken away between two trials
        "provider": {
            "type": "fake_multinode",
            # Without it the fake workers dial the default GCS port 6379 and never join (measured).
            "gcs_address": f"127.0.0.1:{PORT}",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "launch_multiple": True,  # one launch of 2 nodes makes 2 nodes (else 1 per autoscaler round)
        },
        "available_node_types": {
            HEAD_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            WORKER_TYPE: {"resources": {"CPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": MAX_WORKERS},
        },
        "head_node_type": HEAD_TYPE,
        "auth": {"ssh_user": "unused"},
        "file_mounts": {},  # the autoscaler's reset() reads these keys: without them its monitor dies at start
        "cluster_synced_files": [],
        **{key: [] for key in ("setup_commands", "head_setup_commands", "worker_setup_commands",
                               "head_start_ray_commands", "worker_start_ray_commands", "initialization_commands")},
    }  # fmt: skip


@pytest.fixture(scope="module")
def fake_cluster():
    state = Path(tempfile.mkdtemp(prefix="rts-autoscaler-"))
    (state / "autoscaler.yaml").write_text(yaml.safe_dump(autoscaler_config()))
    token = state / "auth_token"
    token.write_text(os.urandom(32).hex())
    token.chmod(0o600)
    env = {
        **os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
        # A submitted job's driver runs `python` from PATH on the head: the one that holds ray, torch and the suite.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }  # fmt: skip
    env.pop("PYTHONPATH", None)
    ports = ["--ray-client-server-port", PORT + 2, "--node-manager-port", PORT + 3, "--object-manager-port", PORT + 4,
             "--dashboard-agent-listen-port", PORT + 5, "--dashboard-agent-grpc-port", PORT + 6,
             "--runtime-env-agent-port", PORT + 7, "--metrics-export-port", PORT + 8,
             "--min-worker-port", PORT + 10, "--max-worker-port", PORT + 59]  # fmt: skip
    log = open(state / "head.log", "w")  # noqa: SIM115  (closed below)
    started = time.monotonic()
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", "--num-cpus", "0", "--port", str(PORT),
         "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(PORT + 1),
         "--autoscaling-config", str(state / "autoscaler.yaml"), "--temp-dir", str(state / "ray"),
         "--disable-usage-stats", *map(str, ports)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=state,
    )  # fmt: skip
    try:
        wait_for(lambda: "Ray runtime started" in (state / "head.log").read_text() or head.poll() is not None,
                 120, "the fake cluster's head")  # fmt: skip
        assert head.poll() is None, (state / "head.log").read_text()[-3000:]
        MEASURED["head_start_s"] = round(time.monotonic() - started, 1)
        yield state, env
    finally:
        # The fake worker nodes are children of the head's autoscaler: one process group stops them all. TERM first
        # (as cluster/local/stop.sh), KILL what is left after 10 s. `head.poll()` reaps the head, else its zombie
        # keeps the group "alive".
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            wait_for(
                lambda: head.poll() is not None and not _group_alive(head.pid), 10, "the fake cluster to stop", 0.2
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)
        log.close()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server():
    with running_mlflow_server(MLFLOW_PORT) as (uri, _):
        yield uri


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def trials(client: MlflowClient, name: str):
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def max_overlap(client: MlflowClient, runs) -> int:
    """The most trials training at the same moment: each from its child run's start to its last reported epoch
    (not the run's end time: the best trial's run stays open while the sweep logs its model)."""
    edges = []
    for run in runs:
        last = max(m.timestamp for m in client.get_metric_history(run.info.run_id, "epoch"))
        edges += [(run.info.start_time, 1), (last, -1)]
    running = peak = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same millisecond: touching is not overlapping
        running += step
        peak = max(peak, running)
    return peak


def nodes_launched(state: Path) -> int:
    """Worker nodes the autoscaler brought up: its largest "Resized to N CPUs" (each worker has 1 CPU, the head 0)."""
    text = "".join(p.read_text() for p in (state / "ray").glob("session_*/logs/monitor.log"))
    return max((int(n) for n in re.findall(r"Resized to (\d+) CPUs", text)), default=0)


# Joins the cluster and prints the plan's view of it, as a sweep's driver makes it just after `ray.init`.
READ_CLUSTER = (
    "import ray, time; ray.init(address='127.0.0.1:{port}', log_to_driver=False); t = time.monotonic(); "
    "from raytune_suite.run.concurrency import read_cluster; view = read_cluster(); "
    "print('VIEW', view.autoscales, sorted(t.name for t in view.node_types), round(time.monotonic() - t, 1))"
)


def test_a_plan_made_as_the_head_comes_up_waits_for_the_autoscaler_and_sees_its_node_types(fake_cluster):
    """First in this module: it joins the head moments after it started. A 0-CPU cluster sends the plan through
    `first_autoscaler_report`: the monitor publishes a status without a report until its first load metrics, and
    planning from that status gave 1 trial at a time. Whether this run had to wait is printed (here: the report was
    there after 7 s of head start-up; the wait itself is tested in tests/unit/test_concurrency.py)."""
    _, env = fake_cluster
    proc = subprocess.run(
        [sys.executable, "-c", READ_CLUSTER.format(port=PORT)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    view = next(line for line in proc.stdout.splitlines() if line.startswith("VIEW"))
    waited = "waiting up to" in proc.stdout
    print(f"\nMEASURED joined {MEASURED['head_start_s']} s after starting the head; {view}; waited: {waited}")
    assert view.split()[1:3] == ["True", f"['{WORKER_TYPE}']"], proc.stdout


def test_a_sweep_on_an_autoscaling_cluster_launches_every_worker_and_runs_trials_on_both_at_once(
    fake_cluster,
    mlflow_server,
):
    state, env = fake_cluster
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "raytune_suite.cli", "run", str(EXPERIMENTS / "mnist_cnn.yaml"),
         "--address", f"127.0.0.1:{PORT}", "--mlflow-uri", mlflow_server, "--storage", str(state / "results"),
         "--set", "run.name=fanout", "--set", "mlflow.experiment_name=fanout", *SWEEP],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    MEASURED["run_wall_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    concurrency = [line for line in proc.stdout.splitlines() if line.startswith("concurrency:")]
    assert concurrency == [
        f"concurrency: 2 trials at once (autoscaler may add {MAX_WORKERS} × {WORKER_TYPE} {{CPU: 1}} (per the "
        f"autoscaler's config {state / 'autoscaler.yaml'}) -> 2 + 0 now; tune.max_concurrent unset)"
    ], proc.stdout[-3000:]

    client = MlflowClient(mlflow_server)
    runs = trials(client, "fanout")
    MEASURED.update(nodes_launched=nodes_launched(state), max_concurrent_trials=max_overlap(client, runs))
    print(f"\nMEASURED {MEASURED}")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert MEASURED["nodes_launched"] == MAX_WORKERS
    assert len({r.data.tags["node_id"] for r in runs}) == MAX_WORKERS
    assert MEASURED["max_concurrent_trials"] == MAX_WORKERS


def test_a_cluster_without_an_autoscaler_config_counts_only_what_it_holds_now(ray_local, capsys):
    # A plain head runs a read-only "autoscaler" that mirrors its nodes as types named node_<id>: nothing to add.
    from raytune_suite.run.concurrency import ClusterView, _autoscaler_status, read_cluster

    wait_for(_autoscaler_status, 30, "the head's autoscaler status")
    capsys.readouterr()
    assert read_cluster() == ClusterView(now={"CPU": 2.0})
    assert "waiting" not in capsys.readouterr().out  # it fits trials now: no wait for an autoscaler's report
