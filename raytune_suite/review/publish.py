"""What a finished sweep publishes: the report's artifacts on the parent run, the best trial's model on its run
(what the model is, and how it is logged, is the sweep's kind's choice: kinds.py, best_model.py).

Both run after the last trial ended and before the parent run is ended; a failure here warns and never changes
the sweep's status: its records and exit code matter more than a plot or a model file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from raytune_suite.config import ExperimentConfig
from raytune_suite.train.kinds import kind_of


def publish(tracker, cfg: ExperimentConfig, sweep_dir: str, best, register_model: str | None) -> None:
    """Report artifacts on the parent run, the best trial's model on its run; warnings only."""
    from raytune_suite.review import report

    try:
        with tempfile.TemporaryDirectory() as tmp:
            sweep = report.load_sweep(tracker.client, tracker.parent_run_id)
            report.write_report(sweep, Path(tmp))
            tracker.client.log_artifacts(tracker.parent_run_id, tmp)
    except Exception as exc:
        print(f"warning: report artifacts not logged: {type(exc).__name__}: {exc}", file=sys.stderr)
    if best is None:
        return
    trial_id, record = best
    try:
        kind_of(cfg).log_best(tracker.client, cfg, sweep_dir, trial_id, record, register_model)
    except Exception as exc:
        print(f"warning: best model not logged: {type(exc).__name__}: {exc}", file=sys.stderr)
