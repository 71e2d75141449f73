"""The one preflight: every check a command's input must pass before any Ray, MLflow or file-system side effect.

`validate`, `run`, `submit`, `report` and `ui` each run an ordered list of named checks (`CHECKS`); `validate`
and `run` share every check of the config itself, so `validate` saying ok means `run` starts. A failed check
raises `ConfigError`: one line, `<field>: <what is wrong>; <the fix>`, which the CLI prints and exits 2 on.

Order matters for speed and for side effects:
1. CLI values (counts, ports, addresses, URI schemes), the config file (at most 256 KiB of UTF-8 YAML whose aliases
   expand to at most 100,000 values, without duplicate keys, a mapping, `--set` applied, finite numbers) and all
   the YAML alone decides (`check_schema`: unknown keys, types and ranges, the shared train section's space)
   import nothing heavy, so a typo answers in a fraction of a second instead of waiting for torch, Ray and MLflow.
2. The typed config imports the experiment module (and torch with it), then checks registry names, its own
   sections, the search space, seed points and the scheduler against the searcher.
3. The target: resources the local Ray instance can hold, the MLflow store (a server must answer within
   `SERVER_TIMEOUT_S`), and last the storage folder, the only check that writes (it creates the folder and
   probes it with a temporary file), so that a failure anywhere before leaves nothing behind.
`validate` runs 1 and 2: it knows no target and starts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytune_suite.errors import ConfigError, one_line
from raytune_suite.run import sweep_folder
from raytune_suite.track.store import check_local_store, is_local_uri, pick_tracking_uri
from raytune_suite.track.store import sqlite_path as sqlite_file

if TYPE_CHECKING:
    from raytune_suite.config import ExperimentConfig

# An MLflow server that has not answered in this long is down or unreachable (today's client retries for minutes).
SERVER_TIMEOUT_S = 3.0
MAX_PORT = 65535
# MLflow's tracking-store schemes (SQLAlchemy ones may name a driver: postgresql+psycopg2://).
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
HOSTED_SCHEMES = ("databricks", "databricks-uc", "uc")
FILE_SCHEMES = ("file", "")


@dataclass
class Preflight:
    """A command's parsed arguments and what the checks learn on the way (the raw and the typed config)."""

    args: argparse.Namespace
    raw: dict[str, Any] | None = None
    cfg: ExperimentConfig | None = None
    report_target: tuple[str, str] | None = None  # (tracking URI, parent run id)
    resumed: dict[str, Any] = dataclasses.field(default_factory=dict)  # flags a resume takes from its sweep folder

    def arg(self, name: str) -> Any:
        return getattr(self.args, name, None)


Check = Callable[[Preflight], None]


def run_checks(command: str, args: argparse.Namespace) -> Preflight:
    """Every check of `command`, in order; the first failure is a one-line `ConfigError`."""
    state = Preflight(args)
    for check in CHECKS[command]:
        try:
            check(state)
        except ConfigError:
            raise
        except Exception as exc:  # a bug in a check, or an input no check foresaw: one line, never a traceback
            raise ConfigError(
                f"preflight {check.__name__}: unexpected {type(exc).__name__}: {one_line(exc)}; "
                "please report this with the command you ran"
            ) from exc
    return state


# -- CLI values ------------------------------------------------------------------------------------------------
def check_num_samples(p: Preflight) -> None:
    n = p.arg("num_samples")
    if n is not None and n < 1:
        raise ConfigError(f"--num-samples {n}: must be at least 1; omit it to use tune.num_samples")


def check_num_cpus(p: Preflight) -> None:
    n = p.arg("num_cpus")
    if n is not None and n < 1:  # Ray would start with no CPU and every trial would wait for ever
        raise ConfigError(f"--num-cpus {n}: must be at least 1; omit it to use all {os.cpu_count()} CPUs")


def check_num_gpus(p: Preflight) -> None:
    n = p.arg("num_gpus")
    if n is not None and n < 0:
        raise ConfigError(f"--num-gpus {n}: must be 0 or more; omit it to use the GPUs Ray detects")


def check_port(p: Preflight) -> None:
    port_in_range(p.arg("port"), "--port")


def port_in_range(port: int | None, field: str) -> None:
    if port is not None and not 1 <= port <= MAX_PORT:
        raise ConfigError(f"{field} {port}: not a port; pick one in 1-{MAX_PORT}, e.g. 5000")


def check_ray_address(p: Preflight) -> None:
    """`run --address`: what `ray.init` joins: auto, HOST:PORT (the GCS) or ray://HOST[:PORT] (Ray Client)."""
    address = p.arg("address")
    if address is None or address == "auto":
        return
    form = "use auto, HOST:6379 or ray://HOST:10001"
    if address == "local":
        if p.arg("resume") is not None:  # a private instance instead of the address the sweep started with
            return
        raise ConfigError("--address local: omit --address to start a private local Ray instance; " + form)
    if address.startswith(("http://", "https://")):
        raise ConfigError(f"--address {address}: a URL is the Jobs API; use `raytune-suite submit` for it, or {form}")
    rest = address.removeprefix("ray://")
    if "://" in rest:
        raise ConfigError(f"--address {address}: unknown scheme; {form}")
    _host_port(rest, address, form, port_required=not address.startswith("ray://"))


def check_jobs_address(p: Preflight) -> None:
    """`submit --address`: the Jobs API's URL, http(s)://HOST[:PORT]."""
    address = p.arg("address")
    form = "give the Jobs API URL as http://HOST:PORT, e.g. http://127.0.0.1:8265"
    parts = urllib.parse.urlsplit(address)
    if parts.scheme not in SERVER_SCHEMES or not parts.netloc:
        raise ConfigError(f"--address {address}: not an http(s) URL; {form}")
    _host_port(parts.netloc, address, form, port_required=False)


def _host_port(netloc: str, address: str, form: str, *, port_required: bool) -> None:
    parts = urllib.parse.urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:  # not a number, or over 65535
        port = 0
    shape = "HOST:PORT" if port_required else "HOST[:PORT]"
    if not parts.hostname or parts.path or parts.query or port == 0 or (port_required and port is None):
        raise ConfigError(f"--address {address}: expected {shape} with a port in 1-{MAX_PORT}; {form}")


def check_mlflow_uri_flag(p: Preflight) -> None:
    """The scheme of an explicit `--mlflow-uri`, before anything slow (the store itself is checked later)."""
    if p.arg("mlflow_uri"):
        check_tracking_uri_form(p.arg("mlflow_uri"), "--mlflow-uri")


def check_tracking_uri_form(uri: str, field: str) -> None:
    """A scheme MLflow knows; a SQLite file whose folder exists; no file store (MLflow 3 refuses it)."""
    if uri in HOSTED_SCHEMES:  # plain `databricks` means the default profile
        return
    scheme = urllib.parse.urlsplit(uri).scheme.partition("+")[0]
    if len(scheme) == 1:  # a Windows drive letter: a plain path
        scheme = ""
    if scheme in FILE_SCHEMES:
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
            raise ConfigError(
                f"{field} {uri}: a file store, which MLflow 3 refuses; use sqlite:///PATH/mlflow.db or http://HOST:5000"
            )
        return
    if scheme not in (*SERVER_SCHEMES, *DATABASE_SCHEMES, *HOSTED_SCHEMES):
        raise ConfigError(
            f"{field} {uri}: unknown scheme {scheme!r}; use sqlite:///PATH/mlflow.db, http(s)://HOST:PORT, "
            "postgresql://..., mysql://... or databricks"
        )
    if scheme == "sqlite":
        folder = Path(sqlite_path(uri)).parent
        if not folder.is_dir():
            raise ConfigError(f"{field} {uri}: no folder {folder} for the SQLite file; create it or fix the path")


def sqlite_path(uri: str) -> str:
    """sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy reads them."""
    return uri.removeprefix("sqlite:///") or ":memory:"


# -- the config file -------------------------------------------------------------------------------------------
def check_config_file(p: Preflight) -> None:
    """Exists, a readable regular file, UTF-8, YAML without duplicate keys, a mapping."""
    from raytune_suite.config import parse_config_text, read_config_text

    path = Path(p.args.config)
    p.raw = parse_config_text(read_config_text(path), path)


def check_overrides(p: Preflight) -> None:
    """`--set KEY=VALUE`s (and `--num-samples`) applied to the raw config; each value must be YAML."""
    from raytune_suite.config import apply_overrides

    overrides = list(p.arg("overrides") or [])
    if p.arg("num_samples") is not None:
        overrides.append(f"tune.num_samples={p.arg('num_samples')}")
    p.raw = apply_overrides(p.raw, overrides, Path(p.args.config))


def check_finite_numbers(p: Preflight) -> None:
    from raytune_suite.config import check_finite_numbers as finite

    finite(p.raw)


def check_schema(p: Preflight) -> None:
    """What the YAML alone decides (unknown keys, types, ranges, the shared train section's space), before the
    experiment module and torch are imported: such a typo answers as fast as a YAML syntax error."""
    from raytune_suite.config import check_schema as schema

    schema(p.raw)


# -- the typed config ------------------------------------------------------------------------------------------
def check_typed_config(p: Preflight) -> None:
    """Every section typed, the experiment module imported, the space and seed points checked against it."""
    from raytune_suite.config import validate_config

    p.cfg = validate_config(p.raw)


def check_scheduler_fits_searcher(p: Preflight) -> None:
    from raytune_suite.search.schedulers import check_pbt

    check_pbt(p.cfg)


def check_configured_mlflow_uri(p: Preflight) -> None:
    """The config's (or $MLFLOW_TRACKING_URI's) store, when no --mlflow-uri replaces it."""
    if p.arg("mlflow_uri"):
        return
    if p.cfg.mlflow.tracking_uri:
        check_tracking_uri_form(p.cfg.mlflow.tracking_uri, "mlflow.tracking_uri")
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        check_tracking_uri_form(os.environ["MLFLOW_TRACKING_URI"], "$MLFLOW_TRACKING_URI")


# -- the target ------------------------------------------------------------------------------------------------
def check_resources_fit(p: Preflight) -> None:
    """A local Ray instance must hold one trial, or the sweep waits for ever (a cluster's nodes are unknown)."""
    if joins_cluster(p):
        return
    tune = p.cfg.tune
    workers = tune.workers_per_trial
    cpus = p.arg("num_cpus") or os.cpu_count() or 1
    needed = tune.resources.cpu * workers
    if needed > cpus:
        raise ConfigError(
            f"tune.resources.cpu: a trial needs {needed:g} CPUs ({tune.resources.cpu:g} x {workers} worker(s)) "
            f"but local Ray has {cpus}; lower tune.resources.cpu or tune.workers_per_trial, or raise --num-cpus"
        )
    gpus = p.arg("num_gpus")
    if gpus is not None and tune.resources.gpu * workers > gpus:
        raise ConfigError(
            f"tune.resources.gpu: a trial needs {tune.resources.gpu * workers:g} GPUs but --num-gpus is {gpus}; "
            "lower tune.resources.gpu or raise --num-gpus"
        )


def ray_on_this_machine(address: str) -> bool:
    """`auto` (the Ray this machine started or joined) or HOST:PORT of this machine; not `ray://`, whose client runs
    Tune's driver, and so its MLflow calls, on the cluster's head."""
    import socket

    if address == "auto":
        return True
    if "://" in address:
        return False
    host = address.rpartition(":")[0].strip("[]")
    return host in {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()} or host.startswith("127.")


def joins_cluster(p: Preflight) -> bool:
    """`--address` names a running Ray to join (`local`, allowed with `--resume`, is a private instance)."""
    return p.arg("address") not in (None, "local")


def tracking_uri(p: Preflight) -> tuple[str, str]:
    """(URI, the field it came from), as `run_sweep` and `submit` pick it."""
    return pick_tracking_uri(p.arg("mlflow_uri"), config=p.cfg.mlflow.tracking_uri if p.cfg else None)


def check_tracking_uri_fits_cluster(p: Preflight) -> None:
    """Trials on a cluster are tracked by a driver that may run elsewhere: the store must be a server. A Ray running
    on this machine (`ray start --head`, joined with `--address auto` or 127.0.0.1:PORT) keeps the driver, the only
    process that writes to MLflow, here: a local store works."""
    if not joins_cluster(p) or (p.arg("resume") is not None and not p.arg("mlflow_uri")):
        return  # a resumed sweep keeps the store its run map names; run_sweep checks that one
    if ray_on_this_machine(p.arg("address")):
        return
    uri, _ = tracking_uri(p)
    if is_local_uri(uri):
        raise ConfigError(  # the field and words sweep.py and cluster.py use for the same check
            f"mlflow.tracking_uri: {uri} is local to this machine, but trials run on a cluster; "
            "pass --mlflow-uri http://HOST:5000 of a server every node can reach"
        )


def check_mlflow_server_answers(p: Preflight) -> None:
    """An http(s) store must answer now: MLflow's client would retry for minutes and then print a traceback."""
    if p.arg("resume") is not None and not p.arg("mlflow_uri"):
        return
    uri, field = tracking_uri(p)
    check_local_store(uri, field)  # a SQLite file that is a folder, an mlartifacts that is a file (store.py)
    server_answers(uri, field)


def server_answers(uri: str, field: str) -> None:
    if urllib.parse.urlsplit(uri).scheme not in SERVER_SCHEMES:
        return
    base = uri.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=SERVER_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered; anything but /health's 200 is for the MLflow client to explain
    except (urllib.error.URLError, OSError) as err:
        reason = one_line(getattr(err, "reason", err))
    raise ConfigError(
        f"{field} {uri}: no MLflow server answers there ({reason}) within {SERVER_TIMEOUT_S:g}s; "
        "start it (mlflow server --host HOST --port PORT) or fix the URI"
    )


def check_resume_target(p: Preflight) -> None:
    """`--resume [DIR]` names a sweep that exists: the same lookup `run_sweep` makes, before the storage probe; with
    `--num-samples N`, N adds trials to it (grow.py). The checks after it see the sweep as it resumes: its saved
    config, and the flags it started with (`--num-cpus`, ...) where they are not given again (`sweep.resumed_flags`,
    which `run_sweep` applies too); `p.resumed` lists the ones taken from the sweep folder."""
    if p.arg("resume") is None:
        return
    from raytune_suite.run.sweep_folder import (
        RESUMED_FLAGS,
        find_sweep_dir,
        resumed_flags,
        storage_location,
        stored_config,
    )

    sweep_dir = find_sweep_dir(p.args.resume, storage_location(p.arg("storage") or p.cfg.run.storage), p.cfg.name)
    given = {name: p.arg(name) for name in RESUMED_FLAGS}
    for name, value in resumed_flags(sweep_dir, given).items():
        if given[name] is None and value is not None:
            setattr(p.args, name, value)
            p.resumed[name] = value
    p.cfg = stored_config(sweep_dir)
    if p.arg("num_samples") is not None:
        from raytune_suite.run.grow import check_growth

        check_growth(stored_config(sweep_dir), sweep_dir, p.arg("num_samples"))


def check_storage(p: Preflight) -> None:
    """The results folder: created if missing and probed with a temporary file; remote storage (s3://, ...) by
    writing, reading back and deleting a small object (storage.probe_writable)."""
    storage = p.arg("storage") or p.cfg.run.storage
    field = "--storage" if p.arg("storage") else "run.storage"
    if "://" in storage:
        from raytune_suite.run.storage import probe_writable

        if problem := probe_writable(storage):
            raise ConfigError(
                f"{field} {problem}; check the bucket, the endpoint (AWS_ENDPOINT_URL_S3) and credentials"
            )
        return
    folder = Path(storage).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(
            f"{field} {storage}: cannot write there ({err.strerror or one_line(err)}); pass a writable folder"
        ) from None


# -- report ----------------------------------------------------------------------------------------------------
def check_top_k(p: Preflight) -> None:
    if p.args.top_k < 1:
        raise ConfigError(f"--top-k {p.args.top_k}: must be at least 1, e.g. --top-k 10")


def check_report_out(p: Preflight) -> None:
    """`--out` (default: ./report-<sweep>, in the working directory) must be a folder that can be created and
    written (checked before reading the sweep)."""
    if p.arg("out"):
        writable_folder(Path(p.args.out), f"--out {p.args.out}")
    else:
        writable_folder(Path.cwd(), "--out (default ./report-<sweep>)", "pass --out of a writable folder")


def writable_folder(folder: Path, field: str, fix: str = "pass a writable folder") -> None:
    """The folder, or its nearest existing parent, is a folder this process can write in, probed with a temporary
    file that is gone at once (as root, `os.access` says yes even to /sys or a read-only mount). Creates nothing."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{field}: {existing} is a file, not a folder; {fix}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(f"{field}: cannot write in {existing} ({err.strerror or one_line(err)}); {fix}") from None


def check_ui_store(p: Preflight) -> None:
    """`ui`'s SQLite store (--mlflow-uri, else $MLFLOW_TRACKING_URI or ./mlflow.db) can be written: the MLflow server
    creates or migrates it at start and dies with a traceback where it cannot."""
    uri, _ = pick_tracking_uri(p.arg("mlflow_uri"))
    db = sqlite_file(uri)
    if db is None:
        return
    field = "--mlflow-uri" if p.arg("mlflow_uri") else "the MLflow store"
    check_local_store(uri, field)  # a folder, or no regular file, as the database
    fix = "pass --mlflow-uri sqlite:///PATH/mlflow.db in a writable folder"
    if db.exists() and not os.access(db, os.W_OK):
        raise ConfigError(f"{field} {uri}: {db} is read-only; make it writable, or {fix}")
    writable_folder(db.parent, f"{field} {uri}", fix)


def check_report_target(p: Preflight) -> None:
    p.report_target = sweep_folder.resolve_report_target(p.args.target, p.arg("mlflow_uri"))
    uri = p.report_target[0]
    field = "--mlflow-uri" if p.arg("mlflow_uri") else f"report {p.args.target}"
    check_tracking_uri_form(uri, field)
    if uri.startswith("sqlite:") and not Path(sqlite_path(uri)).is_file():
        # MlflowClient would create an empty store there and then not find the run.
        raise ConfigError(
            f"{field}: no MLflow store at {sqlite_path(uri)}; pass --mlflow-uri of the store the sweep used"
        )
    server_answers(uri, field)


def check_report_run_exists(p: Preflight) -> None:
    """The parent run is in the store (the only report check that opens MLflow, on a store known to exist)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri, run_id = p.report_target
    try:
        MlflowClient(uri).get_run(run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ConfigError(
            f"report {p.args.target}: no run {run_id} in {uri}; pass the parent run id `run` printed"
        ) from None


def check_experiment_runs(p: Preflight) -> None:
    """The experiment's data loads and its model runs forward and backward, for the defaults and the space's far corner
    (smoke.py): its own bugs are one line here, not every trial failing after Ray and MLflow started."""
    from raytune_suite.train.kinds import kind_of

    kind_of(p.cfg).smoke_check(p.cfg)


# -- the registry ----------------------------------------------------------------------------------------------
CONFIG_CHECKS: list[Check] = [
    check_config_file,
    check_overrides,
    check_finite_numbers,
    check_schema,
    check_typed_config,
    check_scheduler_fits_searcher,
    check_configured_mlflow_uri,
]
CHECKS: dict[str, list[Check]] = {
    "validate": [check_num_cpus, *CONFIG_CHECKS, check_experiment_runs],  # --num-cpus: --plan --calibrate's
    "run": [
        check_num_samples,
        check_num_cpus,
        check_num_gpus,
        check_ray_address,
        check_mlflow_uri_flag,
        *CONFIG_CHECKS,
        check_resume_target,  # then the checks below see the sweep's saved config and flags
        check_resources_fit,
        check_tracking_uri_fits_cluster,
        check_mlflow_server_answers,
        check_experiment_runs,  # seconds (the data loads): after every quick check
        check_storage,  # last: the only check that writes
    ],
    "submit": [
        check_num_samples,
        check_jobs_address,
        check_mlflow_uri_flag,
        *CONFIG_CHECKS,
        check_tracking_uri_fits_cluster,
    ],
    "report": [check_top_k, check_mlflow_uri_flag, check_report_out, check_report_target, check_report_run_exists],
    "ui": [check_port, check_mlflow_uri_flag, check_ui_store],
}
