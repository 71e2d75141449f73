"""What a trial actor costs before its first line of training, and whether what Ray offers removes it (issue #12).

Tune runs each trial in an actor; `sweep_overhead.py` shows ~3 s between `fit()` and the first trial on 2 CPUs,
for bare Ray Tune as for the suite. This script times, on a fresh local Ray instance per run, how long 2 actors
(1 CPU each, as 2 trials) take from being asked for to being ready after importing `ray.tune.trainable` (what
every Tune trial actor imports), in four set-ups:

    plain   the actors are asked for as soon as `ray.init` returns (what Tune does)
    later   asked for 3 s after `ray.init`: time for Ray's prestarted workers to be up
    tasks   after 2 warm-up tasks that import `ray.tune.trainable` on the prestarted workers
    hook    `runtime_env={"worker_process_setup_hook": ...}` importing `ray.tune.trainable` at worker start
    hook_later  both: the hook, and the actors asked for 3 s after `ray.init`

For each it prints the median over `--repeats` runs of: seconds to ready, in how many runs both actors ran in workers
Ray had started with the node (prestarted), in how many one ran in a worker that had run a warm-up task (warmed),
and seconds the actor spent importing `ray.tune.trainable`.

    python benchmarks/actor_startup.py --repeats 3
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = ("plain", "later", "tasks", "hook", "hook_later")


def setup_hook() -> None:
    import ray.tune.trainable  # noqa: F401


def one_run(variant: str) -> dict:
    """In a fresh process: start Ray, ask for 2 actors the way the variant says, time them."""
    import ray

    psutil = importlib.import_module("psutil")  # on the path once ray is: Ray ships it in thirdparty_files

    extra = {"runtime_env": {"worker_process_setup_hook": setup_hook}} if variant.startswith("hook") else {}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, **extra)
    up = time.time()
    warm_pids: list[int] = []
    if variant.endswith("later"):
        time.sleep(3)
    if variant == "tasks":

        @ray.remote(num_cpus=1)
        def warm() -> int:
            import ray.tune.trainable  # noqa: F401

            return os.getpid()

        warm_pids = ray.get([warm.remote() for _ in range(2)])

    @ray.remote(num_cpus=1)
    class Probe:
        def __init__(self) -> None:
            started = time.time()
            import ray.tune.trainable  # noqa: F401

            self.import_s = time.time() - started

        def facts(self) -> tuple[int, float, float]:
            return os.getpid(), psutil.Process().create_time(), self.import_s

    asked = time.time()
    actors = [Probe.remote() for _ in range(2)]
    facts = ray.get([a.facts.remote() for a in actors])
    ready = time.time() - asked
    ray.shutdown()
    return {
        "ready_s": ready,
        "prestarted": all(created < up for _, created, _ in facts),
        "warmed": any(pid in warm_pids for pid, _, _ in facts),
        "import_s": max(imp for _, _, imp in facts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one run, in a child process
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(one_run(args.variant)))
        return
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:  # interleaved, so that a change of load hits every variant alike
            with tempfile.TemporaryDirectory(prefix="rts-", dir="/tmp") as ray_tmp:
                proc = subprocess.run(
                    [sys.executable, __file__, "--variant", variant],
                    capture_output=True, text=True, env={**env, "RAY_TMPDIR": ray_tmp}, check=True,
                )  # fmt: skip
            runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"2 trial actors (1 CPU each) on {os.cpu_count()} CPUs, median of {args.repeats}, "
          f"load average {os.getloadavg()[0]:.2f}:")  # fmt: skip
    print(f"  {'variant':10s} {'ready s':>8s} {'prestarted':>10s} {'warmed':>7s} {'import s':>9s}")
    for variant, rs in runs.items():
        ready = statistics.median(r["ready_s"] for r in rs)
        imp = statistics.median(r["import_s"] for r in rs)
        pre, warmed = sum(r["prestarted"] for r in rs), sum(r["warmed"] for r in rs)
        print(f"  {variant:10s} {ready:8.2f} {f'{pre}/{len(rs)}':>10s} {f'{warmed}/{len(rs)}':>7s} {imp:9.2f}")


if __name__ == "__main__":
    main()
