"""How many trials a sweep runs at once by default: what the cluster holds now plus what its autoscaler may add.

On an autoscaling cluster with a 0-CPU head and workers that start from 0 (every config in `cluster/`), the
resources at start are 0 CPUs; counting only those gave 1 trial at a time, so the autoscaler was asked for one
worker and a 64-trial sweep ran serially. `plan_concurrency` counts the autoscaler's node types too:
`max_workers` × resources of each type that may still be added, plus the nodes up now, capped at the sweep's trials.

Where the node types come from (`read_cluster`, first that answers):
1. the cluster config in the GCS (what Ray Train and Ray Data read; `ray_compat.gcs_cluster_config`), published by
   autoscalers that report it;
2. the autoscaler's own config file, when the driver runs on the head node (as `submit` runs it): the monitor's PID
   is in the autoscaler status the head keeps in the GCS, and its command line names `--autoscaling-config`
   (Ray 2.60's own autoscaler publishes nothing else about its node types; measured on the fake multi-node cluster);
3. otherwise, if an autoscaler manages the cluster but its node types cannot be read (KubeRay runs it in a sidecar
   container), every trial of the sweep may run at once and the autoscaler decides how many fit.

The arithmetic (`plan_concurrency`) takes a `ClusterView` as plain data, so it is tested without Ray.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from raytune_suite.config import ExperimentConfig

REPORT_WAIT_S = 20.0  # the monitor's first report: ~1-5 s after the head starts (AUTOSCALER_UPDATE_INTERVAL_S)


@dataclass(frozen=True)
class NodeType:
    """One kind of node the autoscaler may launch.

    Args:
        name: the node type's name in the autoscaler config.
        resources: what one node offers; empty when the config leaves it to the cloud provider (unknown here).
        max_workers: the most nodes of this type; -1 for no limit.
        running: nodes of this type up now (already counted in `ClusterView.now`).
    """

    name: str
    resources: dict[str, float]
    max_workers: int
    running: int = 0

    @property
    def addable(self) -> int:
        """Nodes the autoscaler may still add (-1: no limit)."""
        return -1 if self.max_workers < 0 else max(0, self.max_workers - self.running)


@dataclass(frozen=True)
class ClusterView:
    """What the connected cluster offers now and what its autoscaler may add, as plain data.

    Args:
        now: total resources of the nodes up now (`ray.cluster_resources()`).
        node_types: worker node types the autoscaler may launch (empty if none, or unknown).
        autoscales: whether an autoscaler manages the cluster (True with empty `node_types`: it cannot tell).
        source: where `node_types` came from, for the start line.
    """

    now: dict[str, float]
    node_types: tuple[NodeType, ...] = ()
    autoscales: bool = False
    source: str = ""


@dataclass(frozen=True)
class Concurrency:
    """How many trials run at once, and why (the sweep prints both in one start line)."""

    n: int
    why: str

    def line(self) -> str:
        return f"concurrency: {self.n} trial{'s' if self.n != 1 else ''} at once ({self.why})"


@dataclass(frozen=True)
class TrialSize:
    """Resources one trial holds, all its workers together."""

    cpu: float
    gpu: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> TrialSize:
        workers = cfg.tune.workers_per_trial
        # A multi-worker trial's outer Tune actor reserves a sliver of CPU on top of its workers (tuner.py).
        outer = 0.0
        if workers > 1:
            from raytune_suite.train.distributed import OUTER_CPU

            outer = OUTER_CPU
        return cls(cpu=cfg.tune.resources.cpu * workers + outer, gpu=cfg.tune.resources.gpu * workers)


def fits(resources: dict[str, float], size: TrialSize) -> int:
    """Trials of `size` that `resources` hold (resources summed over nodes, as Ray reports them)."""
    counts = []
    if size.cpu > 0:
        counts.append(resources.get("CPU", 0) / size.cpu)
    if size.gpu > 0:
        counts.append(resources.get("GPU", 0) / size.gpu)
    if not counts:
        return 0
    return int(min(counts) + 1e-9)


def _fmt(resources: dict[str, float]) -> str:
    shown = {k: (int(v) if float(v).is_integer() else v) for k, v in resources.items() if k in ("CPU", "GPU")}
    return "{" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "}"


def plan_concurrency(
    cfg: ExperimentConfig, *, requested: int | None = None, cluster: ClusterView | None = None, trials: int = 0
) -> Concurrency:
    """Trials at once for this sweep: `requested` (the caller's), else `tune.max_concurrent`, else what the
    cluster may hold once its autoscaler has added every node it may add, capped at the sweep's `trials`
    (default `tune.num_samples`). `cluster` defaults to the connected cluster (`read_cluster`)."""
    trials = trials or cfg.tune.num_samples
    if requested:
        return Concurrency(requested, "max_concurrent passed by the caller")
    if cfg.tune.max_concurrent:
        return Concurrency(cfg.tune.max_concurrent, "tune.max_concurrent")
    cluster = read_cluster() if cluster is None else cluster
    size = TrialSize.of(cfg)
    now = fits(cluster.now, size)
    unset = "tune.max_concurrent unset"
    types = [t for t in cluster.node_types if t.addable != 0]
    if not cluster.autoscales or (cluster.node_types and not types):
        n = max(1, min(now, trials))
        full = " (autoscaler at its maxima)" if cluster.autoscales else ""
        capped = f"; capped at {trials} trials" if now > trials else ""
        why = f"{now} fit the cluster's {_fmt(cluster.now)} now{full}{capped}; {unset}"
        return Concurrency(n, why)
    unknown = [t.name for t in types if t.addable < 0 or not t.resources]
    if not types or unknown:
        what = "its node types unknown"
        if unknown:
            what = f"node types {', '.join(unknown)} unbounded or without declared resources"
        return Concurrency(trials, f"autoscaling cluster, {what}: all {trials} trials, the autoscaler decides; {unset}")
    added: dict[str, float] = {}
    for t in types:
        for key, value in t.resources.items():
            added[key] = added.get(key, 0) + value * t.addable
    later = fits({k: cluster.now.get(k, 0) + added.get(k, 0) for k in {*cluster.now, *added}}, size) - now
    parts = " + ".join(f"{t.addable} × {t.name} {_fmt(t.resources)}" for t in types)
    n = max(1, min(now + later, trials))
    capped = f"; capped at {trials} trials" if now + later > trials else ""
    source = f" (per {cluster.source})" if cluster.source else ""
    return Concurrency(n, f"autoscaler may add {parts}{source} -> {later} + {now} now{capped}; {unset}")


# -- the live cluster --------------------------------------------------------------------------------------------
def read_cluster() -> ClusterView:
    """The connected cluster (after `ray.init`): resources now and the autoscaler's node types (module docstring)."""
    import ray

    now = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    status = _autoscaler_status() if any(now.values()) else first_autoscaler_report(_autoscaler_status)
    report = (status or {}).get("autoscaler_report") or {}
    # Only nodes up now: their resources are in `now`. Nodes still launching are counted with what may be added.
    running = dict(report.get("active_nodes") or {})
    from_gcs = _node_types_from_gcs(running)
    if from_gcs:
        return ClusterView(now, from_gcs, True, "the GCS cluster config")
    if not report:
        return ClusterView(now)
    from raytune_suite.run.ray_compat import readonly_node_type_prefix

    # A cluster started without an autoscaling config gets a read-only "autoscaler" that only mirrors its nodes,
    # each as its own type named by Ray's readonly prefix: nothing can be added there.
    readonly = readonly_node_type_prefix()
    if running and all(name.startswith(readonly) for name in running):
        return ClusterView(now)
    from_file = _node_types_from_monitor(status.get("monitor_pid"), running)
    if from_file is not None:
        path, types = from_file
        return ClusterView(now, types, True, f"the autoscaler's config {path}")
    return ClusterView(now, (), True, "")


def first_autoscaler_report(read_status, wait_s: float = REPORT_WAIT_S, poll_s: float = 0.5) -> dict | None:
    """The autoscaler status, once it holds a report or after `wait_s`.

    Called only on a cluster that fits no trial now (a 0-CPU head whose workers start from 0): there the autoscaler
    is the only way anything runs, and a sweep started seconds after the head would otherwise miss its node types
    (the monitor publishes a status without a report until its first load metrics) and plan 1 trial at a time.
    """
    deadline = time.monotonic() + wait_s
    status = read_status()
    if not (status or {}).get("autoscaler_report"):
        print(f"the cluster fits no trial now: waiting up to {wait_s:g} s for its autoscaler's report", flush=True)
    while not (status or {}).get("autoscaler_report") and time.monotonic() < deadline:
        time.sleep(poll_s)
        status = read_status()
    return status


def _autoscaler_status() -> dict | None:
    from raytune_suite.run.ray_compat import autoscaler_status

    return autoscaler_status()


def _node_types_from_gcs(running: dict[str, int]) -> tuple[NodeType, ...]:
    from raytune_suite.run.ray_compat import gcs_cluster_config

    config = gcs_cluster_config()
    if not config:
        return ()
    return tuple(
        NodeType(g.name, dict(g.resources), g.max_count, running.get(g.name, 0))
        for g in config.node_group_configs
        if g.max_count != 0
    )


def _node_types_from_monitor(pid, running: dict[str, int]) -> tuple[str, tuple[NodeType, ...]] | None:
    """Node types from the config file the head's autoscaler reads, if that process is on this machine."""
    if not pid:
        return None
    try:
        args = Path(f"/proc/{int(pid)}/cmdline").read_bytes().decode().split("\0")
        cwd = os.readlink(f"/proc/{int(pid)}/cwd")
    except (OSError, ValueError):
        return None
    path = next((a.split("=", 1)[1] for a in args if a.startswith("--autoscaling-config=")), None)
    if not path:
        return None
    path = os.path.join(cwd, os.path.expanduser(path))
    try:
        import yaml

        config = yaml.safe_load(Path(path).read_text())
        head = config["head_node_type"]
        default_max = config.get("max_workers", 0)  # a type without its own maximum gets the cluster's
        types = tuple(
            NodeType(
                name, dict(spec.get("resources") or {}), int(spec.get("max_workers", default_max)), running.get(name, 0)
            )
            for name, spec in config["available_node_types"].items()
            if name != head
        )
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None
    return shlex.quote(path), types
