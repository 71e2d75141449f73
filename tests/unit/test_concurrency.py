"""The default concurrency counts what the autoscaler may add, not only what is up at start (no Ray needed)."""

import pytest

from raytune_suite.config import load_config
from raytune_suite.run.concurrency import ClusterView, Concurrency, NodeType, first_autoscaler_report, plan_concurrency
from tests.conftest import EXPERIMENTS

WORKER = NodeType("worker_1cpu", {"CPU": 1}, max_workers=2)


def cfg(*overrides: str):
    return load_config(EXPERIMENTS / "diabetes_linear.yaml", ["tune.num_samples=4", *overrides])


def test_a_0_cpu_head_with_workers_from_0_counts_every_worker_the_autoscaler_may_add():
    plan = plan_concurrency(cfg(), cluster=ClusterView(now={}, node_types=(WORKER,), autoscales=True))
    assert plan == Concurrency(2, "autoscaler may add 2 × worker_1cpu {CPU: 1} -> 2 + 0 now; tune.max_concurrent unset")
    assert plan.line().startswith("concurrency: 2 trials at once (autoscaler may add 2 × worker_1cpu")


def test_nodes_up_now_count_once_and_running_workers_are_not_added_again():
    running = NodeType("worker_1cpu", {"CPU": 1}, max_workers=2, running=1)
    big = NodeType("big", {"CPU": 8}, max_workers=1)
    view = ClusterView(now={"CPU": 1}, node_types=(running, big), autoscales=True, source="x.yaml")
    plan = plan_concurrency(cfg("tune.num_samples=30"), cluster=view)
    assert plan.n == 1 + 1 + 8
    assert "1 × worker_1cpu {CPU: 1} + 1 × big {CPU: 8} (per x.yaml) -> 9 + 1 now" in plan.why


def test_the_sweeps_trial_count_caps_it():
    plan = plan_concurrency(
        cfg(), cluster=ClusterView(now={}, node_types=(NodeType("w", {"CPU": 16}, 4),), autoscales=True)
    )
    assert plan.n == 4 and "capped at 4 trials" in plan.why


def test_trial_size_counts_gpus_and_the_scarcer_resource_wins():
    gpu_node = NodeType("gpu", {"CPU": 8, "GPU": 1}, max_workers=2)
    plan = plan_concurrency(
        cfg("tune.num_samples=64", "tune.resources.cpu=2", "tune.resources.gpu=0.5"),
        cluster=ClusterView(now={}, node_types=(gpu_node,), autoscales=True),
    )
    assert plan.n == 4  # 2 GPUs / 0.5, though 16 CPUs / 2 would allow 8


def test_an_autoscaler_whose_node_types_cannot_be_read_gets_every_trial_at_once():
    plan = plan_concurrency(cfg("tune.num_samples=64"), cluster=ClusterView(now={}, autoscales=True))
    assert plan.n == 64 and "node types unknown" in plan.why and "the autoscaler decides" in plan.why


@pytest.mark.parametrize("node", [NodeType("cpu_workers", {}, 4), NodeType("cpu_workers", {"CPU": 8}, -1)])
def test_node_types_without_declared_resources_or_maximum_get_every_trial_at_once(node):
    plan = plan_concurrency(
        cfg("tune.num_samples=64"), cluster=ClusterView(now={}, node_types=(node,), autoscales=True)
    )
    assert plan.n == 64 and "cpu_workers unbounded or without declared resources" in plan.why


def test_a_static_cluster_counts_what_it_holds_now_and_never_less_than_one():
    assert plan_concurrency(cfg(), cluster=ClusterView(now={"CPU": 3})).n == 3
    plan = plan_concurrency(cfg(), cluster=ClusterView(now={}))
    assert plan.n == 1 and plan.why.startswith("0 fit the cluster's {} now")


def test_an_autoscaler_at_its_maxima_adds_nothing():
    full = NodeType("worker_1cpu", {"CPU": 1}, max_workers=2, running=2)
    plan = plan_concurrency(cfg(), cluster=ClusterView(now={"CPU": 2}, node_types=(full,), autoscales=True))
    assert plan.n == 2 and "autoscaler at its maxima" in plan.why


def test_an_explicit_limit_wins_and_the_cluster_is_not_asked():
    # `cluster=None` would read the live cluster; an explicit limit must not need one.
    assert plan_concurrency(cfg("tune.max_concurrent=3")) == Concurrency(3, "tune.max_concurrent")
    assert plan_concurrency(cfg("tune.max_concurrent=3"), requested=5).n == 5


def test_a_multi_worker_trial_counts_all_its_workers_and_its_outer_actor():
    node = NodeType("w", {"CPU": 8}, max_workers=1)
    plan = plan_concurrency(
        cfg("tune.num_samples=8", "tune.workers_per_trial=2"), cluster=ClusterView({}, (node,), autoscales=True)
    )
    assert plan.n == 3  # 8 CPUs / (2 workers × 1 CPU + the outer trial's sliver)


def statuses(*answers):
    """What successive reads of the autoscaler status return (the last one repeats)."""
    answers = list(answers)
    return lambda: answers.pop(0) if len(answers) > 1 else answers[0]


def test_on_a_cluster_that_fits_nothing_yet_the_plan_waits_for_the_autoscalers_first_report(capsys):
    report = {"autoscaler_report": {"active_nodes": {"head": 1}}}
    read = statuses(None, {"monitor_pid": 1}, report)
    assert first_autoscaler_report(read, wait_s=5, poll_s=0.01) == report
    assert "waiting up to 5 s for its autoscaler's report" in capsys.readouterr().out


def test_without_a_report_the_wait_ends_and_the_last_status_is_used():
    assert first_autoscaler_report(statuses({"monitor_pid": 1}), wait_s=0.05, poll_s=0.01) == {"monitor_pid": 1}


def test_a_report_already_there_is_used_without_waiting(capsys):
    report = {"autoscaler_report": {"active_nodes": {"head": 1}}}
    assert first_autoscaler_report(statuses(report), wait_s=5, poll_s=5) == report
    assert capsys.readouterr().out == ""
