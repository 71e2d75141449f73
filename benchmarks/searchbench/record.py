"""Record a table: train every configuration of `problems.TABLES[name]` to its last epoch, on one CPU thread.

    python -m benchmarks.searchbench.record mnist_cnn [more names]    # writes benchmarks/searchbench/tables/<name>.npz

Each configuration trains as a 1-CPU trial of `raytune-suite run` would (the suite's `build_training`,
`train_epoch` and `evaluate`, torch seeded by `tune.seed`, the split by `tune.split_seed`), in this process with no
Ray and no MLflow. The table keeps the experiment's metric after every epoch (NaN from the epoch a configuration
diverges, where the trainable stops) and each configuration's measured seconds per epoch, with the spec, the
machine and the date in `meta`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.searchbench.problems import EXPERIMENT_SCHEDULE, TABLES, TABLES_DIR, TableSpec, table_spec_to_json

REPO = Path(__file__).resolve().parents[2]


def trial_config(cfg, row: dict, suite: dict) -> dict:
    """A trial's config dict (as the trainable receives it) of the fixed values with the row's values over them."""
    sections = {section: dict(values) for section, values in cfg.fixed_sections().items()}
    for path, value in row.items():
        section, name = path.split(".", 1)
        sections[section][name] = value
    return {**sections, "suite": suite}


def record(name: str, spec: TableSpec, out_dir: Path = TABLES_DIR) -> Path:
    import torch

    from raytune_suite.config import load_config
    from raytune_suite.train.trainable import Trial, build_training, one_epoch

    torch.set_num_threads(1)
    cfg = load_config(REPO / "experiments" / f"{spec.experiment}.yaml", list(spec.overrides))
    suite = {
        "experiment": cfg.experiment,
        "seed": cfg.tune.seed,
        "split_seed": cfg.tune.split_seed,
        "metric": cfg.tune.metric,
        "mode": cfg.tune.mode,
        "checkpoint_every": 1,
    }
    rows = spec.configs()
    epochs = cfg.train.epochs
    values = np.full((len(rows), epochs), np.nan, dtype=np.float32)
    seconds = np.zeros(len(rows), dtype=np.float32)
    cpu, data, started = torch.device("cpu"), None, time.monotonic()
    for i, row in enumerate(rows):
        trial = Trial.from_config(trial_config(cfg, row, suite))
        if data is None:  # every row shares the data config (no table tunes a data parameter)
            data = trial.experiment.load_data(trial.data, cfg.tune.split_seed)
        t = build_training(trial, data, cpu)
        tic, trained = time.perf_counter(), 0
        for epoch in range(epochs):
            metrics = one_epoch(t, epoch + 1)  # the trainable's own epoch
            trained += 1
            if "diverged" in metrics:
                break  # the trainable stops a diverged trial; the table keeps NaN from here
            values[i, epoch] = metrics[cfg.tune.metric]
        seconds[i] = (time.perf_counter() - tic) / trained
        if (i + 1) % 10 == 0 or i + 1 == len(rows):
            print(f"{name}: {i + 1}/{len(rows)} configs, {time.monotonic() - started:.0f} s", flush=True)
    epochs_ = EXPERIMENT_SCHEDULE[spec.experiment]
    meta = {
        "name": name,
        "metric": cfg.tune.metric,
        "mode": cfg.tune.mode,
        "grace_period": epochs_[1],
        "reduction_factor": epochs_[2],
        "spec": table_spec_to_json(spec),
        "configs": rows,
        "recorded": {
            "date": date.today().isoformat(),
            "machine": platform.platform(),
            "torch": torch.__version__,
            "threads": 1,
            "wall_s": round(time.monotonic() - started, 1),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.npz"
    np.savez_compressed(path, values=values, seconds=seconds, meta=np.array(json.dumps(meta)))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(TABLES))
    args = parser.parse_args(argv)
    for name in args.names:
        path = record(name, TABLES[name])
        print(f"{name}: wrote {path} ({path.stat().st_size / 1024:.0f} KiB)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
