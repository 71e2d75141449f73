"""`raytune-suite sync SWEEP_DIR`: write what a sweep kept in its spool while its tracking store did not answer.

It replays the spool (spool.py) in order and exactly once, rewrites the sweep's run map with the store's run ids,
and publishes the report and the best model when the sweep ended without them (`spool.PUBLISH_PENDING` on its
parent run). Run it again after it was cut short: it goes on from where it stopped.
Exits: 0 written (or nothing to write), 1 the store does not answer (the spool stays as it was), 2 not a sweep folder.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

from raytune_suite.errors import RunFailure
from raytune_suite.track.runmap import RunMap
from raytune_suite.track.store import pick_tracking_uri


@dataclass
class SyncResult:
    """Args: written: kept records written; refused: those the store refused (each a line); statuses: the sweep's
    runs by status afterwards; published: whether the report and model were published now."""

    written: int = 0
    refused: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    published: bool = False


def sync_sweep(sweep_dir: str, tracking_uri: str | None = None) -> SyncResult:
    from mlflow import MlflowClient

    from raytune_suite.run.sweep import QUIET_ENV
    from raytune_suite.track.spool import PUBLISH_PENDING, answers, replay, spool_of
    from raytune_suite.track.store import child_runs
    from raytune_suite.track.store_writer import HTTP_DEADLINES

    for key, value in {**QUIET_ENV, **HTTP_DEADLINES}.items():
        os.environ.setdefault(key, value)
    run_map = RunMap.load(sweep_dir, field=f"sync {sweep_dir}")
    uri, _ = pick_tracking_uri(tracking_uri, saved=run_map.tracking_uri)
    client = MlflowClient(uri)
    result = SyncResult()
    spool = spool_of(sweep_dir)
    if spool is not None and len(spool):
        if not answers(client):
            raise RunFailure(f"the MLflow store {uri} does not answer; the sweep's records stay in {spool.folder}")
        try:
            result.written = replay(spool, client, on_error=result.refused.append)
        except Exception as exc:
            raise RunFailure(
                f"the MLflow store {uri} stopped answering ({type(exc).__name__}); the rest stays in {spool.folder}: "
                "run sync again"
            ) from None
    if spool is not None:  # the map as the store knows the runs
        ids = spool.ids
        run_map.parent_run_id = ids.get(run_map.parent_run_id, run_map.parent_run_id)
        run_map.trials = {trial: ids.get(run, run) for trial, run in run_map.trials.items()}
        run_map.save(sweep_dir)
    parent = client.get_run(run_map.parent_run_id)
    if PUBLISH_PENDING in parent.data.tags:
        publish_now(client, run_map, parent, sweep_dir)
        client.delete_tag(parent.info.run_id, PUBLISH_PENDING)
        result.published = True
    runs = [parent, *child_runs(client, parent.info.experiment_id, parent.info.run_id)]
    result.statuses = dict(Counter(r.info.status for r in runs))
    return result


def publish_now(client, run_map: RunMap, parent, sweep_dir: str) -> None:
    """What the sweep's end would have published: the report on the parent run, the best trial's model on its run."""
    from raytune_suite.review.publish import publish
    from raytune_suite.run.sweep_folder import stored_config
    from raytune_suite.track.spool import PUBLISH_PENDING

    tags = parent.data.tags
    best = None
    if "best_trial" in tags and "best_run_id" in tags:
        trial = tags["best_trial"]
        record = SimpleNamespace(
            run_id=tags["best_run_id"], best_config=run_map.configs.get(trial, {}), best_epoch=int(tags["best_epoch"])
        )
        best = (trial, record)
    tracker = SimpleNamespace(client=client, parent_run_id=parent.info.run_id)
    publish(tracker, stored_config(sweep_dir), sweep_dir, best, tags[PUBLISH_PENDING] or None)


def print_result(result: SyncResult, sweep_dir: str) -> None:
    statuses = ", ".join(f"{status} {n}" for status, n in sorted(result.statuses.items()))
    published = "; report and model published" if result.published else ""
    print(f"sync {sweep_dir}: {result.written} kept record(s) written{published}; runs: {statuses}")
    for line in result.refused:
        print(f"warning: the store refused a kept record: {line}", file=sys.stderr)
