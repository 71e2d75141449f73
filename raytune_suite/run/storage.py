"""Where sweeps live: one place that turns a folder or URI (`./ray_results`, `/data/x`, `s3://bucket/prefix`) into a
`pyarrow.fs.FileSystem` and a path on it, and the few file operations the suite needs there.

Remote storage with Ray Tune 2.60 (measured against a `moto` S3 server, pyarrow 25.0.1; tests/integration/
test_s3_storage.py):

- `RunConfig(storage_path="s3://bucket/prefix")` works. The driver resolves it once with
  `pyarrow.fs.FileSystem.from_uri`, which reads `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) = `http://host:port`
  for an S3-compatible store (MinIO, moto, Ceph) and the region (`AWS_REGION` / `AWS_DEFAULT_REGION`) from the
  driver's environment. Ray then ships that filesystem object, pickled inside the trial's `StorageContext`, to the
  trial workers, which write checkpoints themselves: the endpoint travels with it (a worker started without any
  AWS variable wrote its checkpoints to the right server), but credentials do not unless they were given to the
  filesystem explicitly; workers find them through their own AWS chain (env variables, `~/.aws`, instance role).
  On a cluster, put them on every node or in the job's `runtime_env={"env_vars": ...}` (`tune_env()` builds it).
  (moto accepts unsigned requests, so the tests cannot show a worker failing for want of credentials.)
- `RunConfig(storage_path="bucket/prefix", storage_filesystem=fs)` also works: the path is then given *without*
  `s3://` (Ray uses it on `fs` as is), and `fs` (e.g. `pyarrow.fs.S3FileSystem(endpoint_override="host:port",
  scheme="http", region=..., access_key=..., secret_key=...)`) is pickled to the workers with everything given
  to it, keys included. `resolve()` returns such a pair (credentials left to the AWS chain).
- `tune.Tuner.restore` takes the same two forms: `restore("s3://bucket/prefix/<name>", trainable,
  resume_errored=True)` with the variables, or `restore("bucket/prefix/<name>", trainable, resume_errored=True,
  storage_filesystem=fs)`. Both resumed errored trials from their checkpoints in the bucket.
- Checkpoints live at `<prefix>/<name>/<trial dir>/checkpoint_NNNNNN/`. `Result.checkpoint.path` is a path on
  `Result.checkpoint.filesystem` without the scheme (`bucket/prefix/...`): `download_dir(f"s3://{path}", dest)`
  (or `Checkpoint.to_directory()`) is how a driver gets the files; `Result.path` is not a local folder either.
- pyarrow keeps S3 "folders" as empty `folder/` marker objects (created by `create_dir`, and re-created when the
  last object under a folder is deleted).

Every function here takes a local path or a URI; local paths need no setup, remote ones what pyarrow needs above.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse

import pyarrow.fs as pafs

# Checked in this order, as the AWS SDKs do: the S3-specific variable wins.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
# What trial workers need to reach S3 when the storage path is a URI (see tune_env).
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
S3_VARIABLES = (*CREDENTIAL_VARIABLES, *REGION_VARIABLES, *ENDPOINT_VARIABLES)


def is_remote(path: str | os.PathLike) -> bool:
    """True for URIs of a remote store (`s3://`, `gs://`, ...); False for local paths and `file://` URIs."""
    scheme = urlparse(str(path)).scheme
    return len(scheme) > 1 and scheme != "file"  # one letter: a Windows drive, not a scheme


def _env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem honouring the endpoint and region of the environment (credentials: the AWS chain)."""
    kwargs = {}
    if endpoint := _env(ENDPOINT_VARIABLES):
        url = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs.update(endpoint_override=url.netloc, scheme=url.scheme)
    if region := _env(REGION_VARIABLES):
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def resolve(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path on it) for a local path or URI; for `s3://bucket/key` the path is `bucket/key`.

    The pair is also what `RunConfig(storage_filesystem=fs, storage_path=path)` and
    `Tuner.restore(path, ..., storage_filesystem=fs)` take.
    """
    text = str(path)
    url = urlparse(text)
    if url.scheme == "s3":
        return s3_filesystem(), f"{url.netloc}{url.path}".rstrip("/")
    if is_remote(text) or url.scheme == "file":
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(text))


def join(base: str | os.PathLike, *parts: str) -> str:
    """`base/part/...` for local paths and URIs alike (os.path.join would mangle `s3://`)."""
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])


def tune_env() -> dict[str, str]:
    """The S3 variables of this process, for `ray.init(runtime_env={"env_vars": tune_env()})`: trial workers on
    other nodes write checkpoints themselves and need the credentials (a local Ray inherits the driver's
    environment). Secrets: never log or record the result."""
    return {n: os.environ[n] for n in S3_VARIABLES if os.environ.get(n)}


def exists(uri: str | os.PathLike) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_text(uri: str | os.PathLike) -> str:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def write_text(uri: str | os.PathLike, text: str) -> None:
    """Write a file whole. Atomic on both kinds of store: locally a temporary file renamed over the target; on S3
    an object becomes visible only when its upload completes (S3 has no rename)."""
    fs, path = resolve(uri)
    parent = path.rsplit("/", 1)[0]
    # S3 has no folders; pyarrow's create_dir would leave an empty `parent/` marker object behind.
    if parent and parent != path and not isinstance(fs, pafs.S3FileSystem):
        fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with fs.open_output_stream(tmp) as f:
                f.write(text.encode("utf-8"))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    with fs.open_output_stream(path) as f:
        f.write(text.encode("utf-8"))


def list_dirs(uri: str | os.PathLike) -> list[str]:
    """Names of the folders directly under `uri` (on S3: the common prefixes), sorted; [] if it does not exist."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def newest(uris: list[str]) -> str | None:
    """The most recently modified of these files (None for none)."""
    dated = []
    for uri in uris:
        fs, path = resolve(uri)
        dated.append((fs.get_file_info(path).mtime_ns or 0, uri))
    return max(dated)[1] if dated else None


def download_dir(uri: str | os.PathLike, local_dir: str | os.PathLike) -> str:
    """Copy the folder at `uri` (recursively) into `local_dir`; returns `local_dir`."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"{uri}: no such folder")
    os.makedirs(local_dir, exist_ok=True)
    pafs.copy_files(path, os.path.abspath(local_dir), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
    return str(local_dir)


def probe_writable(uri: str | os.PathLike) -> str | None:
    """Create, write, read back and delete a small object under `uri`: None if that all worked, else why not,
    in one line (meant for a check before a sweep starts, not for the hot path). The folder itself stays (on S3:
    pyarrow leaves an empty `folder/` marker object when it deletes the last object under it)."""
    probe = join(uri, f".raytune-suite-probe-{uuid.uuid4().hex}")
    try:
        write_text(probe, "ok")
        if read_text(probe) != "ok":
            return f"{uri}: a file written there read back differently"
        fs, path = resolve(probe)
        fs.delete_file(path)
    except Exception as err:  # any failure is the answer: permissions, no such bucket, unreachable endpoint
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{uri}: not writable ({type(err).__name__}: {first})"
    return None
