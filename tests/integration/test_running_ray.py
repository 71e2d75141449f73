"""The fast way to iterate on a small sweep: a Ray already running on this machine (`ray start --head` with its own
temp folder, ports and token, on 127.0.0.1), joined with `--address`, with the default local SQLite store. The
driver, the only process that writes to MLflow, runs here: a local store works (it was refused as if the trials'
tracking ran elsewhere). Timing the two ways is `python benchmarks/fixed_costs.py small`'s job."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient

from benchmarks.fixed_costs import start_head, stop_head
from tests.conftest import REPO
from tests.integration.cli_process import CLI

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT = 16800  # the head's block: 16800-16859 (test_cluster uses 16400-16559, its MLflow server 16390)
SVC = REPO / "benchmarks" / "experiments" / "breast_cancer_svc.yaml"


@pytest.fixture(scope="module")
def head():
    """(`--address`, the environment that holds its token): benchmarks/fixed_costs.py's head, stopped by its process
    group."""
    folder = Path(tempfile.mkdtemp(prefix="rts-head-"))
    token = folder / "token"
    token.write_text(os.urandom(32).hex())
    token.chmod(0o600)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    process = start_head(PORT, env, folder, num_cpus=2)
    try:
        yield f"127.0.0.1:{PORT}", env
    finally:
        stop_head(process)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_small_sweep_joins_a_running_local_ray_with_the_default_local_store(head, tmp_path):
    address, env = head
    proc = subprocess.run(
        [*CLI, "run", str(SVC), "--address", address, "--set", "space.model.C.values=[0.1, 1.0]"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"joined {address}: 2 CPUs" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("time: ")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 + 6 and {r.info.status for r in runs} == {"FINISHED"}  # 2 C x 3 kernels
