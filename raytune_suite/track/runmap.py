"""`RunMap`: the sweep folder's record of which MLflow runs belong to it (`mlflow_runs.json`).

One writer (the tracker, on the driver) and three readers (`--resume`, `report`, the tracker re-attaching). It is
written with the parent run, while Ray starts and before any trial does, so a driver killed later leaves a folder
that `--resume` can continue, and replaced atomically (storage.write_text), so a reader never sees half a file.
The sweep folder may be local or remote (`s3://...`): every access goes through `storage.py`, imported only when a
map is read or written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

from raytune_suite.errors import ConfigError

RUN_MAP_FILE = "mlflow_runs.json"


@dataclass
class RunMap:
    """Args:
    parent_run_id: the sweep's parent run.
    tracking_uri: the store that holds it.
    resumes: how many times the sweep was resumed.
    trials: trial id -> child run id.
    configs: trial id -> the trial's sampled sections.
    """

    parent_run_id: str
    tracking_uri: str
    resumes: int = 0
    trials: dict[str, str] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def path(sweep_dir: str | os.PathLike) -> str:
        from raytune_suite.run import storage

        return storage.join(sweep_dir, RUN_MAP_FILE)

    @classmethod
    def exists(cls, sweep_dir: str | os.PathLike) -> bool:
        from raytune_suite.run import storage

        return storage.exists(cls.path(sweep_dir))

    @classmethod
    def load(cls, sweep_dir: str | os.PathLike, field: str | None = None) -> RunMap:
        """The map of a sweep folder; a one-line `ConfigError` naming `field` (default: `--resume DIR`) if the
        folder holds none, or one that is not JSON or names no parent run."""
        from raytune_suite.run import storage

        field = field or f"--resume {sweep_dir}"
        path = cls.path(sweep_dir)
        if not storage.exists(path):
            raise ConfigError(f"{field}: no {RUN_MAP_FILE} in that folder; pass the sweep folder `run` printed")
        try:
            raw = json.loads(storage.read_text(path))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConfigError(f"{field}: {path} is unreadable or not JSON ({reason}); pass the run id") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("parent_run_id"), str):
            raise ConfigError(f"{field}: {path} names no parent_run_id; pass the sweep's parent run id instead")
        return cls(
            parent_run_id=raw["parent_run_id"],
            tracking_uri=str(raw.get("tracking_uri") or ""),
            resumes=int(raw.get("resumes", 0)),
            trials=dict(raw.get("trials", {})),
            configs=dict(raw.get("configs", {})),
        )

    def save(self, sweep_dir: str | os.PathLike) -> None:
        """Replace the folder's map. Compact JSON of the fields as they are: `asdict` deep-copies every config and
        `indent` switches json to its pure-Python encoder, together ~20x slower on a 1,000-trial map."""
        from raytune_suite.run import storage

        storage.write_text(self.path(sweep_dir), json.dumps({f.name: getattr(self, f.name) for f in fields(self)}))
