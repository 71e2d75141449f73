import shutil
import tempfile

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """One private Ray instance per test module: 2 CPUs, own temp dir, no dashboard; shut down afterwards."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="rts-ray-")
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def store(tmp_path):
    """A fresh MLflow SQLite store and a Ray storage folder under this test's tmp_path."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri), str(tmp_path / "ray_results")
