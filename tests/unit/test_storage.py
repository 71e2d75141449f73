"""storage.py on local paths: the same calls the suite makes on s3:// (tests/integration/test_s3_storage.py)."""

import os

import pyarrow.fs as pafs
import pytest

from raytune_suite.run import storage


@pytest.mark.parametrize(
    ("path", "remote"),
    [("s3://bucket/results", True), ("gs://b/x", True), ("/tmp/ray_results", False), ("ray_results", False),
     ("file:///tmp/x", False), ("C:/results", False)],
)  # fmt: skip
def test_is_remote_tells_uris_of_stores_from_local_paths(path, remote):
    assert storage.is_remote(path) is remote


def test_a_local_path_resolves_to_the_local_filesystem_and_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fs, path = storage.resolve("ray_results")
    assert isinstance(fs, pafs.LocalFileSystem) and path == str(tmp_path / "ray_results")


def test_an_s3_uri_resolves_to_bucket_and_key_on_an_s3_filesystem_in_the_environments_region(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # never contacted: resolving is offline
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.delenv("AWS_REGION", raising=False)
    fs, path = storage.resolve("s3://bucket/results/sweep/")
    assert isinstance(fs, pafs.S3FileSystem) and path == "bucket/results/sweep"
    assert fs.region == "eu-west-3"


def test_join_keeps_the_scheme_of_a_uri():
    assert storage.join("s3://b/results/", "sweep", "/trial") == "s3://b/results/sweep/trial"
    assert storage.join("/tmp/x", "y") == "/tmp/x/y"


def test_write_then_read_text_creates_parents_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "b" / "state.json"
    storage.write_text(target, "{}")
    storage.write_text(target, '{"v": 2}')  # replaces whole
    assert storage.read_text(target) == '{"v": 2}' and storage.exists(target)
    assert os.listdir(target.parent) == ["state.json"]
    assert not storage.exists(tmp_path / "missing")


def test_list_dirs_names_only_folders_and_is_empty_for_a_missing_folder(tmp_path):
    (tmp_path / "sweep_b").mkdir()
    (tmp_path / "sweep_a").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert storage.list_dirs(tmp_path) == ["sweep_a", "sweep_b"]
    assert storage.list_dirs(tmp_path / "nope") == []


def test_download_dir_copies_a_folder_tree(tmp_path):
    src = tmp_path / "checkpoint_000001"
    (src / "sub").mkdir(parents=True)
    (src / "model.pt").write_bytes(b"\x00\x01")
    (src / "sub" / "meta.json").write_text("{}")
    out = storage.download_dir(src, tmp_path / "local")
    assert (tmp_path / "local" / "model.pt").read_bytes() == b"\x00\x01"
    assert (tmp_path / "local" / "sub" / "meta.json").read_text() == "{}" and out == str(tmp_path / "local")
    with pytest.raises(FileNotFoundError):
        storage.download_dir(tmp_path / "missing", tmp_path / "x")


def test_probe_writable_is_none_for_a_writable_folder_and_leaves_nothing_behind(tmp_path):
    assert storage.probe_writable(tmp_path / "results") is None
    assert os.listdir(tmp_path / "results") == []


def test_probe_writable_says_why_a_folder_cannot_be_written(tmp_path):
    (tmp_path / "a_file").write_text("x")
    error = storage.probe_writable(tmp_path / "a_file" / "results")  # a folder inside a file cannot exist
    assert error is not None and error.startswith(f"{tmp_path / 'a_file' / 'results'}: not writable (")
    assert "\n" not in error
