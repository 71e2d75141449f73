"""Remote storage against a real S3-compatible server (moto, tests/integration/s3_server.py): storage.py's calls,
and Ray Tune itself with `storage_path="s3://..."` checkpointing there, handing the best checkpoint back and
resuming an errored trial from it with `Tuner.restore`.

Ray starts before the S3 variables are set in this process, so its workers get them only from
`runtime_env={"env_vars": ...}`, as a job on a cluster would.
"""

import json
import os
import shutil
import tempfile

import pytest
from ray import tune

from raytune_suite.run import storage
from tests.integration.s3_server import s3_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_env(s3_server, monkeypatch):  # noqa: F811
    """This process (the Tune driver) talks to the server: the variables a user would export."""
    for name in storage.S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(scope="module")
def ray_s3(s3_server):  # noqa: F811
    """A private 2-CPU Ray whose workers get the S3 variables only through the job's runtime_env (the raylet starts
    without them: they are out of this process's environment while ray.init runs)."""
    import ray

    saved = {n: os.environ.pop(n) for n in storage.S3_VARIABLES if n in os.environ}
    temp_dir = tempfile.mkdtemp(prefix="rts-s3-")
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False,
                 runtime_env={"env_vars": s3_server.env})  # fmt: skip
        yield s3_server
    finally:
        ray.shutdown()
        os.environ.update(saved)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_storage_reads_writes_lists_downloads_and_probes_on_s3(s3_env, tmp_path):
    base = s3_env.uri("storage-test")
    storage.write_text(storage.join(base, "sweep_a", "state.json"), '{"a": 1}')
    storage.write_text(storage.join(base, "sweep_b", "ckpt", "model.bin"), "weights")
    assert storage.read_text(storage.join(base, "sweep_a", "state.json")) == '{"a": 1}'
    assert storage.exists(storage.join(base, "sweep_a", "state.json"))
    assert not storage.exists(storage.join(base, "nope.json"))
    assert storage.list_dirs(base) == ["sweep_a", "sweep_b"]
    assert storage.list_dirs(storage.join(base, "missing")) == []
    storage.download_dir(storage.join(base, "sweep_b"), tmp_path / "local")
    assert (tmp_path / "local" / "ckpt" / "model.bin").read_text() == "weights"

    assert storage.probe_writable(s3_env.uri("probe")) is None
    # The probe object is gone; pyarrow keeps an empty `probe/` folder marker, as a local probe keeps the folder.
    assert [k for k in s3_env.keys("probe") if not k.endswith("/")] == []
    error = storage.probe_writable("s3://no-such-bucket/results")
    assert error is not None and error.startswith("s3://no-such-bucket/results: not writable (")


def test_probe_writable_reports_an_unreachable_endpoint_in_one_line(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    error = storage.probe_writable("s3://sweeps/results")
    assert error is not None and "not writable" in error and "\n" not in error


def two_epochs(config):
    """Checkpoints after each of 2 epochs; with `crash`, a fresh start dies after epoch 1 (resumed: it finishes)."""
    start = 0
    if (checkpoint := tune.get_checkpoint()) is not None:
        with checkpoint.as_directory() as path, open(os.path.join(path, "state.json")) as f:
            start = json.load(f)["epoch"]
    for epoch in range(start + 1, 3):
        with tempfile.TemporaryDirectory() as path:
            with open(os.path.join(path, "state.json"), "w") as f:
                json.dump({"epoch": epoch, "lr": config["lr"]}, f)
            score = config["lr"] * epoch
            tune.report({"score": score, "epoch": epoch, "resumed_from": start},
                        checkpoint=tune.Checkpoint.from_directory(path))  # fmt: skip
        if config["crash"] and start == 0:
            raise RuntimeError("crash after the first epoch's checkpoint")


def make_tuner(run_config: tune.RunConfig) -> tune.Tuner:
    return tune.Tuner(
        two_epochs,
        param_space={"lr": tune.grid_search([0.1, 0.2]), "crash": tune.grid_search([False, True])},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=run_config,
    )


def check_sweep_on_s3(server, grid, prefix: str, tmp_path):
    # Every trial's checkpoints are objects in the bucket, not files on this machine.
    keys = server.keys(prefix)
    assert sum(k.endswith("/checkpoint_000000/state.json") for k in keys) == 4, keys
    assert sum(k.endswith("/checkpoint_000001/state.json") for k in keys) == 2, keys  # crashed ones stop at 1
    assert len(grid.errors) == 2

    best = grid.get_best_result()
    assert best.config == {"lr": 0.2, "crash": False}
    local = storage.download_dir(f"s3://{best.checkpoint.path}", tmp_path / "best")
    assert json.loads((tmp_path / "best" / "state.json").read_text()) == {"epoch": 2, "lr": 0.2}
    assert local == str(tmp_path / "best")


def check_resumed(grid):
    assert not grid.errors
    crashed = [r for r in grid if r.config["crash"]]
    assert len(crashed) == 2
    for result in crashed:  # resumed from the epoch-1 checkpoint in the bucket, not from scratch
        assert result.metrics["epoch"] == 2 and result.metrics["resumed_from"] == 1


@pytest.mark.slow  # two 4-trial sweeps on one Ray: 20-25 s on 2 idle CPUs, 60-85 s on busy ones
def test_tune_checkpoints_to_an_s3_uri_and_restores_from_it(ray_s3, s3_env, tmp_path):
    grid = make_tuner(tune.RunConfig(name="uri", storage_path=s3_env.uri("results"), verbose=0)).fit()
    check_sweep_on_s3(s3_env, grid, "results/uri/", tmp_path)
    assert storage.list_dirs(s3_env.uri("results")) == ["uri"]

    restored = tune.Tuner.restore(s3_env.uri("results", "uri"), trainable=two_epochs, resume_errored=True)
    check_resumed(restored.fit())


@pytest.mark.slow  # two 4-trial sweeps on one Ray: 20-25 s on 2 idle CPUs, 60-85 s on busy ones
def test_tune_checkpoints_through_a_storage_filesystem_and_restores_with_it(ray_s3, s3_env, tmp_path):
    fs, path = storage.resolve(s3_env.uri("results-fs"))
    assert path == f"{s3_env.bucket}/results-fs"  # without s3://: Ray uses it on `fs` as is
    run_config = tune.RunConfig(name="fs", storage_path=path, storage_filesystem=fs, verbose=0)
    grid = make_tuner(run_config).fit()
    check_sweep_on_s3(s3_env, grid, "results-fs/fs/", tmp_path)

    restored = tune.Tuner.restore(f"{path}/fs", trainable=two_epochs, resume_errored=True, storage_filesystem=fs)
    check_resumed(restored.fit())
