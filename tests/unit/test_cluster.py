"""Submission helpers that need no cluster: the token, the staged working dir, the resolved config."""

import subprocess
import sys

import pytest

from raytune_suite.cluster import SUBMITTED_CONFIG, auth_headers, cluster_config, cluster_storage, stage_working_dir
from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from tests.conftest import EXPERIMENTS, REPO

SERVER = "http://127.0.0.1:5000"


def test_the_token_comes_from_the_environment_or_the_file_it_names(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("abc123\n")
    assert auth_headers({"RAY_AUTH_TOKEN": "xyz"}) == {"Authorization": "Bearer xyz"}
    assert auth_headers({"RAY_AUTH_TOKEN_PATH": str(token_file)}) == {"Authorization": "Bearer abc123"}
    assert auth_headers({}) == {}
    with pytest.raises(ConfigError, match="RAY_AUTH_TOKEN_PATH: cannot read"):
        auth_headers({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")})


def test_a_local_mlflow_store_is_refused_for_a_cluster_sweep(mnist_yaml):
    with pytest.raises(ConfigError, match=r"mlflow.tracking_uri: sqlite:///x.db is local .* --mlflow-uri"):
        cluster_config(load_config(mnist_yaml), REPO, "sqlite:///x.db", "~/ray_results")


def test_submit_with_a_local_store_exits_2_before_contacting_the_cluster(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raytune_suite.cli", "submit", str(EXPERIMENTS / "mnist_cnn.yaml"),
         "--address", "http://127.0.0.1:1", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: mlflow.tracking_uri:") and len(proc.stderr.strip().splitlines()) == 1


def test_relative_storage_becomes_the_head_nodes_default_but_shared_paths_are_kept():
    assert cluster_storage("ray_results") == "~/ray_results"
    assert cluster_storage("/nfs/results") == "/nfs/results"
    assert cluster_storage("s3://bucket/sweeps") == "s3://bucket/sweeps"


def test_the_staged_project_leaves_out_heavy_and_private_parts_and_holds_the_resolved_config(tmp_path):
    project = tmp_path / "project"
    for rel in ["experiments/mine.py", ".venv/lib/x.py", ".git/HEAD", "ray_results/a/b", "mlflow.db", "pkg/m.py"]:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("x")
    (project / "experiments/mine.py").write_text((REPO / "experiments/mnist_cnn.py").read_text())
    cfg = load_config(EXPERIMENTS / "mnist_cnn.yaml", [f"experiment={project / 'experiments/mine.py'}", "train.lr=0.5"])
    staged = stage_working_dir(project, cluster_config(cfg, project, SERVER, "/shared"), tmp_path / "staged")

    shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert shipped == {"experiments/mine.py", "pkg/m.py", SUBMITTED_CONFIG}
    again = load_config(staged / SUBMITTED_CONFIG)
    assert again.experiment == str(staged / "experiments/mine.py")
    assert (again.train.lr, again.mlflow.tracking_uri, again.run.storage) == (0.5, SERVER, "/shared")
    assert again.space == cfg.space


def test_an_experiment_file_outside_the_shipped_folder_is_refused(tmp_path, mnist_yaml):
    cfg = load_config(mnist_yaml, [f"experiment={EXPERIMENTS / 'mnist_cnn.py'}"])
    with pytest.raises(ConfigError, match=r"experiment: .* is outside the working dir"):
        cluster_config(cfg, tmp_path, SERVER, "/shared")
