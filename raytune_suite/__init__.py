"""raytune_suite: tune PyTorch models (and scikit-learn estimators) with Ray Tune, every trial recorded in MLflow.

The package's layers, in the order a sweep passes through them (docs/architecture.md):

    config/   the typed config from YAML to trainable: the schema, the search space, the objective
    check/    what a command's input must pass before anything starts: preflight, smoke check, plan
    search/   searchers and schedulers, and how a Bayesian searcher reads ASHA's results
    train/    what runs in a trial: the experiment kinds, the torch trainable, DDP, estimators, optimizers
    run/      one sweep end to end: its folder, Ray's Tuner, the console, stops, Ray workarounds
    track/    the MLflow records: runs, store, spool, sync
    review/   the report, what a finished sweep publishes, the MLflow UI

    cli.py (the `raytune-suite` command), cluster.py (`submit`), scaffold.py (`new`), errors.py

An experiment author imports `raytune_suite.experiments` (Datasets) and `raytune_suite.data` (split_indices): those
paths do not move. Modules that moved into the layers keep their old paths as aliases (`MOVED`): a sweep folder
written before the move pickles the suite's classes by their old module paths (raytune_suite.tuner,
raytune_suite.tracking, ...), and `--resume` must still read it (tests/integration/test_old_sweep_resumes.py).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["MOVED", "Datasets", "ExperimentConfig", "load_config", "run_sweep"]

# The module paths before the package had layers (2026-12-07) -> where each module lives now.
MOVED = {
    "space": "config.space",
    "objective": "config.objective",
    "explain": "config.explain",
    "preflight": "check.preflight",
    "smoke": "check.smoke",
    "frames": "check.frames",
    "plan": "check.plan",
    "fixed_costs": "check.fixed_costs",
    "searchers": "search.searchers",
    "schedulers": "search.schedulers",
    "fidelity": "search.fidelity",
    "hyperopt_record": "search.hyperopt_record",
    "kinds": "train.kinds",
    "trainable": "train.trainable",
    "trial_process": "train.trial_process",
    "estimators": "train.estimators",
    "distributed": "train.distributed",
    "optim": "train.optim",
    "schedules": "train.schedules",
    "regularize": "train.regularize",
    "sweep": "run.sweep",
    "sweep_folder": "run.sweep_folder",
    "tuner": "run.tuner",
    "grow": "run.grow",
    "concurrency": "run.concurrency",
    "ray_compat": "run.ray_compat",
    "reaper": "run.reaper",
    "console": "run.console",
    "progress": "run.progress",
    "stops": "run.stops",
    "storage": "run.storage",
    "tracking": "track.tracking",
    "store": "track.store",
    "runmap": "track.runmap",
    "store_writer": "track.store_writer",
    "spool": "track.spool",
    "sync": "track.sync",
    "report": "review.report",
    "publish": "review.publish",
    "best_model": "review.best_model",
    "ui": "review.ui",
}


_own_specs: dict = {}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import raytune_suite.<old>` gives the module at its new path: the same module object under both names (no
    second copy whose classes would not be the first's)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != __name__ or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{MOVED[spec.name.partition('.')[2]]}")
        _own_specs[spec.name] = module.__spec__  # importlib sets the alias's spec on it next: put back below
        return module

    def exec_module(self, module):
        module.__spec__ = _own_specs.pop(module.__spec__.name)  # it ran under its new name and keeps that spec


if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
    sys.meta_path.append(_Alias())


def __getattr__(name: str):
    """The public surface, imported when first used (importing the package stays free of Ray and torch)."""
    if name == "run_sweep":
        from raytune_suite.run.sweep import run_sweep

        return run_sweep
    if name in ("load_config", "ExperimentConfig"):
        from raytune_suite import config

        return getattr(config, name)
    if name == "Datasets":
        from raytune_suite.experiments import Datasets

        return Datasets
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
