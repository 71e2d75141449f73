"""A sweep's folder (a local path or a URI Tune stores in): the one place that knows what it holds and how to find it.

    <storage>/<sweep name>/
        sweep_config.yaml     the resolved config, every --set and --num-samples applied (`save_config`)
        sweep_flags.json      the command-line flags the config does not hold: --num-cpus, --address, ... (`save_flags`)
        mlflow_runs.json      the MLflow parent and child runs of the sweep (runmap.RunMap)
        sweep_stages.json     its growths (grow.py), mlflow_spool/ what waited for the store (spool.py)
        trial_<id>/           a trial's results and checkpoints (`trial_folder_name`), beside Tune's own state

`run --resume DIR` (sweep.py), its preflight, `report`, `sync` and publishing read the folder through here, so a
file name, the resume check and the resume hint are each decided once.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytune_suite.errors import ConfigError
from raytune_suite.run import storage as files
from raytune_suite.track.runmap import RUN_MAP_FILE, RunMap

if TYPE_CHECKING:
    from raytune_suite.config import ExperimentConfig

SWEEP_CONFIG = "sweep_config.yaml"
# The command-line settings a sweep ran with that its config does not hold: `--resume DIR` alone reuses them.
SWEEP_FLAGS = "sweep_flags.json"
RESUMED_FLAGS = ("num_cpus", "num_gpus", "address", "register_model")
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def storage_location(storage: str) -> str:
    """An absolute local path (`~` expanded) or a URI (s3://, gs://, ...) kept as given: Tune takes both."""
    if "://" in storage:
        return storage
    return str(Path(storage).expanduser().resolve())


def sweep_name(sweep_dir: str) -> str:
    return sweep_dir.rstrip("/").rsplit("/", 1)[-1]


def trial_folder_name(trial_id: str) -> str:
    """A trial's folder in its sweep's folder: `trial_<id>` instead of Ray's default, which packs the whole config
    into a 200-character name."""
    return f"trial_{trial_id}"


def trial_folder(sweep_dir: str, trial_id: str) -> str:
    return files.join(sweep_dir, trial_folder_name(trial_id))


# -- the config and flags a sweep started with ------------------------------------------------------------------
def save_config(cfg: ExperimentConfig, sweep_dir: str) -> None:
    """The resolved config beside Ray's state, so `--resume` continues exactly the sweep that was started."""
    import yaml

    files.write_text(files.join(sweep_dir, SWEEP_CONFIG), yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def stored_config(sweep_dir: str) -> ExperimentConfig:
    import yaml

    from raytune_suite.config import validate_config

    path = files.join(sweep_dir, SWEEP_CONFIG)
    if not files.exists(path):
        raise ConfigError(f"--resume {sweep_dir}: no {SWEEP_CONFIG} there; pass the sweep folder `run` printed")
    raw = yaml.safe_load(files.read_text(path))
    tune = raw.setdefault("tune", {})
    tune.setdefault("split_seed", tune.get("seed", 0))  # saved before split_seed existed: tune.seed made the split
    return validate_config(raw)


def save_flags(flags: dict[str, Any], sweep_dir: str) -> None:
    """The command-line settings this run uses (`RESUMED_FLAGS`), beside the config: a later `--resume DIR` takes
    the ones it is not given again from here."""
    with contextlib.suppress(OSError):  # the config and run map, written already, are what a resume needs
        files.write_text(files.join(sweep_dir, SWEEP_FLAGS), json.dumps(flags))


def resumed_flags(sweep_dir: str, given: dict[str, Any]) -> dict[str, Any]:
    """`RESUMED_FLAGS` for a resume: each one given again (not None) wins, the others are the sweep's own."""
    return {**given, **{k: v for k, v in stored_flags(sweep_dir).items() if given.get(k) is None}}


def stored_flags(sweep_dir: str) -> dict[str, Any]:
    """What `save_flags` kept (the flags that were set), {} for a sweep saved before it existed."""
    path = files.join(sweep_dir, SWEEP_FLAGS)
    try:
        raw = json.loads(files.read_text(path)) if files.exists(path) else {}
    except (OSError, ValueError):
        return {}
    return {k: raw[k] for k in RESUMED_FLAGS if isinstance(raw, dict) and raw.get(k) is not None}


def flags_text(flags: dict[str, Any]) -> str:
    """`--num-cpus 2 --address auto`: the flags as typed."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in flags.items() if v is not None)


# -- finding a sweep -----------------------------------------------------------------------------------------------
def find_sweep_dir(resume: str | Path, storage_path: str, config_name: str) -> str:
    """`resume` itself (a local folder or a URI), or (empty) the newest sweep of this config under the storage."""
    if str(resume):
        found = str(resume) if files.is_remote(resume) else str(Path(resume).resolve())
        if not RunMap.exists(found):
            raise ConfigError(f"--resume {resume}: not a sweep folder (no {RUN_MAP_FILE}); "
                              "pass the folder `run` printed")  # fmt: skip
        return found
    candidates = [files.join(storage_path, name) for name in files.list_dirs(storage_path)
                  if name.startswith(config_name)]  # fmt: skip
    newest = files.newest([RunMap.path(c) for c in candidates if RunMap.exists(c)])
    if newest is None:
        raise ConfigError(f"--resume: no sweep of {config_name} under {storage_path}; pass its folder: --resume DIR")
    return newest.rsplit("/", 1)[0]


def resolve_report_target(target: str, uri: str | None) -> tuple[str, str]:
    """A sweep folder (its `mlflow_runs.json`) or a parent run id -> (tracking URI, parent run id)."""
    from raytune_suite.track.store import pick_tracking_uri

    path = Path(target)
    if path.is_dir():
        run_map = RunMap.load(path, f"report {target}")
        return pick_tracking_uri(uri, saved=run_map.tracking_uri)[0], run_map.parent_run_id
    if path.exists():
        raise ConfigError(f"report {target}: a file; pass the sweep folder `run` printed, or its parent run id")
    if not RUN_ID.match(target):
        raise ConfigError(
            f"report {target}: no such folder, and not an MLflow run id (32 hex digits); "
            "pass the sweep folder `run` printed, or its parent run id"
        )
    return pick_tracking_uri(uri)[0], target


# -- the way back in -----------------------------------------------------------------------------------------------
@dataclass
class ResumeHint:
    """The command that continues an interrupted or failed sweep, printed on the way out."""

    sweep_dir: str
    config_path: str | Path | None
    flags: dict[str, Any] = field(default_factory=dict)  # this run's RESUMED_FLAGS
    said: bool = False

    def say(self) -> None:
        """The command, then what the sweep folder keeps for it: `--resume DIR` alone reproduces the sweep (its
        config, `--set`s and `--num-samples` applied, is in SWEEP_CONFIG, the flags in SWEEP_FLAGS)."""
        if self.said:  # once: the stop deadline may say it too
            return
        self.said = True
        if RunMap.exists(self.sweep_dir):
            config = self.config_path or "EXPERIMENT.yaml"
            print(f"sweep state saved; continue it with: raytune-suite run {config} --resume {self.sweep_dir}",
                  file=sys.stderr)  # fmt: skip
            kept = f", and {flags_text(self.flags)}" if flags_text(self.flags) else ""
            print(f"  (the sweep folder keeps its config with every --set and --num-samples{kept}: --resume DIR "
                  "alone runs the sweep as it started; a flag given again wins)", file=sys.stderr)  # fmt: skip
        from raytune_suite.track.spool import spool_of

        spool = spool_of(self.sweep_dir)
        if spool is not None and (pending := len(spool)):
            print(f"{pending} MLflow record(s) kept in {spool.folder} (the store did not answer); the resume writes "
                  f"them, or now: raytune-suite sync {self.sweep_dir}", file=sys.stderr)  # fmt: skip
