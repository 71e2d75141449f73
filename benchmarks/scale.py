"""Scale of one sweep: does the driver's cost per trial stay flat from 100 to 1,000 trials?

Each size runs through the suite exactly as `raytune-suite run` does (`run_sweep`: typed config, random search,
FIFO, MLflow parent and child runs in the default SQLite store `./mlflow.db` of a fresh temporary folder, progress
output, end-of-sweep report) on all CPUs of a fresh local Ray, in its own process, with a trainable that does
nothing but report EPOCHS=3 times. Then, outside the sweep: `raytune-suite report` on the sweep folder, and a real
`mlflow server` on 127.0.0.1 over the same store, through which the parent's children are listed page by page.

    python benchmarks/scale.py                    # 100 (reference) and 1,000 trials
    python benchmarks/scale.py --trials 100 1000 --search hyperopt
    python benchmarks/scale.py --quick            # 20 and 100 trials (a smoke run)

Prints per size: trials per second, driver cost per trial (sweep wall / trials), the driver's RSS after `ray.init`,
what the libraries any sweep imports once add to it (MLflow, torch, matplotlib, scikit-learn: imported before the
sweep starts, so that the growth measured is what the trials add), its peak and its growth (from after those imports
to the peak, the end-of-sweep report included), the MLflow writer thread's calls per second and the write queue's
largest backlog, progress lines printed, `report` seconds, the REST listing's seconds, and the children found
complete (FINISHED, steps 1..EPOCHS); the load average, sampled every 5 s; then the same trials through bare Ray Tune
(trials per second, driver RSS growth from after `ray.init`; `--no-bare` skips them). Then PASS/FAIL for each goal
of issue #12 (the largest size against the smallest). `--profile` writes a cProfile of each driver into its kept
folder: how the quadratic run-map write was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3
# Issue #12's goals: the largest size against the smallest.
MAX_COST_RATIO = 1.5  # driver cost per trial
MAX_RSS_GROWTH_MB = 200.0
MAX_REPORT_S = 30.0
LINES_PER_TRIAL = 0.1  # progress output: summaries, not a line per trial start and end
PAGE = 500  # runs per REST page: 1,000 children take several pages
PROGRESS_LINE = re.compile(r"^\[\s*\d+\.\ds\] ")


def tiny_trainable(config: dict) -> None:
    """EPOCHS reports of a made-up accuracy that depends on the sampled lr; `epoch_s` seconds apart (0: none)."""
    import math

    from ray import tune

    bench = config["bench"]
    for epoch in range(1, EPOCHS + 1):
        if bench["epoch_s"]:
            time.sleep(bench["epoch_s"])
        score = 0.95 - 0.05 * abs(math.log10(config["train"]["lr"]) + 2.5) + 0.01 * epoch
        tune.report({"epoch": epoch, "val_accuracy": score, "train_loss": 1.0 / epoch})


def _with_bench(bench: dict):
    def trainable(config: dict) -> None:
        tiny_trainable({**config, "bench": bench})

    trainable.__name__ = "tiny_trainable"
    return trainable


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    """One sweep of `args.size` trials in this process, with cwd = its own temporary folder (the default store)."""
    from raytune_suite.config import load_config
    from raytune_suite.review import publish as publishing
    from raytune_suite.run import sweep
    from raytune_suite.run.sweep import connect_ray
    from raytune_suite.train.kinds import kind_of

    overrides = [
        "data.dataset=digits", f"train.epochs={EPOCHS}", f"tune.num_samples={args.size}",
        f"tune.search={args.search}", "tune.scheduler=fifo",
        "space={train: {lr: {type: loguniform, low: 1e-4, high: 1e-1}}, "
        "model: {dropout: {type: uniform, low: 0.0, high: 0.5}}}",
    ]  # fmt: skip
    cfg = load_config(REPO / "experiments" / "mnist_cnn.yaml", overrides)
    # Ray is started here, by the same call run_sweep makes, so that the RSS baseline includes Ray's own client and
    # the growth measured is what the sweep adds; run_sweep then finds Ray up and uses it.
    connect_ray(None)
    after_ray = rss_mb()
    # What any sweep imports once (MLflow, SQLAlchemy, torch, matplotlib, scikit-learn), imported here first so
    # that the growth measured is what the trials add; its own size is printed beside it.
    sweep.prepare_publishing(kind_of(cfg))
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

    base = rss_mb()
    marks = {}
    publish = publishing.publish  # run_sweep imports it from its module when fit() has returned

    def timed_publish(*a, **kw):  # the peak when fit() has returned (the report's libraries are imported during fit)
        marks["fit_peak_mb"] = peak_mb()
        return publish(*a, **kw)

    publishing.publish = timed_publish
    result = sweep.run_sweep(cfg, storage="ray_results", trainable=_with_bench({"epoch_s": args.epoch_s}))
    peak = peak_mb()
    writer = result.writer
    print(json.dumps({
        "trials": result.trials, "failed": result.failed, "wall_s": result.wall_s, "fit_s": result.fit_s,
        "rss_ray_mb": after_ray, "rss_base_mb": base, "rss_peak_mb": peak,
        "rss_fit_peak_mb": marks.get("fit_peak_mb", peak),
        "writes": writer.calls, "write_s": writer.busy_s,
        "max_backlog": writer.max_backlog, "parent_run_id": result.parent_run_id,
        "experiment_id": result.experiment_id, "sweep_dir": result.storage_path,
    }))  # fmt: skip


def bare_child(args: argparse.Namespace) -> None:
    """The same trials through bare Ray Tune (Tuner, random search, FIFO, actor reuse, no MLflow): the driver RSS
    growth and trials per second Ray Tune itself has at this size."""
    import ray
    from ray import tune

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    base = rss_mb()
    started = time.monotonic()
    tuner = tune.Tuner(
        _with_bench({"epoch_s": args.epoch_s}),
        param_space={"train": {"lr": tune.loguniform(1e-4, 1e-1)}},
        tune_config=tune.TuneConfig(num_samples=args.size, reuse_actors=True, metric="val_accuracy", mode="max"),
        run_config=tune.RunConfig(storage_path=str(Path("ray_results").resolve()), verbose=0),
    )
    results = tuner.fit()
    wall = time.monotonic() - started
    print(json.dumps({"trials": len(results), "wall_s": wall, "rss_base_mb": base, "rss_peak_mb": peak_mb()}))


def run_bare(size: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"rts-scale-bare-{size}-") as workdir:
        cmd = [sys.executable, __file__, "--size", str(size), "--bare", "--epoch-s", str(args.epoch_s)]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if proc.returncode != 0:
        sys.exit(f"bare Ray Tune, {size} trials, failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_size(size: int, args: argparse.Namespace, workdir: Path) -> dict:
    cmd = [sys.executable, __file__, "--size", str(size), "--search", args.search, "--epoch-s", str(args.epoch_s)]
    if args.profile:
        cmd[1:1] = ["-m", "cProfile", "-o", str(workdir / "driver.prof")]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default store: ./mlflow.db in the working directory
    from load_sampler import sampled_load  # beside this script

    with sampled_load() as loads:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if proc.returncode != 0:
        sys.exit(f"{size} trials failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    out["progress_lines"] = sum(1 for line in lines if PROGRESS_LINE.match(line))
    out["load"] = max(loads)
    (workdir / "driver.log").write_text(proc.stdout + proc.stderr)
    return out


def time_report(sweep_dir: str, workdir: Path) -> float:
    """`raytune-suite report SWEEP_DIR` as a user runs it (a new process: imports included)."""
    cli = Path(sys.executable).with_name("raytune-suite")
    started = time.monotonic()
    proc = subprocess.run([str(cli), "report", sweep_dir, "--out", str(workdir / "report")],
                          capture_output=True, text=True, cwd=workdir)  # fmt: skip
    took = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"report failed:\n{proc.stderr[-3000:]}")
    return took


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def list_children(out: dict, workdir: Path) -> dict:
    """Through a real `mlflow server` over the sweep's store: the REST listing of the parent's children, timed
    (every page), and each child checked complete: FINISHED, with the objective at steps 1..EPOCHS."""
    from mlflow import MlflowClient

    from raytune_suite.review.ui import start_server
    from raytune_suite.track.store import child_runs

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    server = start_server(uri, free_port())  # its own process group, stopped by its PID in stop()
    try:
        started = time.monotonic()
        children = child_runs(MlflowClient(server.url), out["experiment_id"], out["parent_run_id"], page=PAGE)
        list_s = time.monotonic() - started
    finally:
        server.stop()
    local = MlflowClient(uri)
    steps = list(range(1, EPOCHS + 1))
    complete = sum(
        1
        for run in children
        if run.info.status == "FINISHED"
        and sorted(m.step for m in local.get_metric_history(run.info.run_id, "val_accuracy")) == steps
    )
    return {"list_s": list_s, "children": len(children), "complete": complete}


def growth_of(result: dict, variant: str | None) -> float:
    """Peak RSS minus its baseline, MB, of the suite's run (variant None) or of the bare one ("bare")."""
    r = result[variant] if variant else result
    return r["rss_peak_mb"] - r["rss_base_mb"]


def row(label: str, values: list, fmt: str) -> str:
    return f"  {label:34s}" + "".join(f"{format(v, fmt):>12s}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000], help="sizes; the first is the reference")
    parser.add_argument("--quick", action="store_true", help="20 and 100 trials")
    parser.add_argument("--search", choices=["random", "hyperopt"], default="random")
    parser.add_argument("--epoch-s", type=float, default=0.0, help="seconds each report waits (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (stores, logs, reports)")
    parser.add_argument("--profile", action="store_true", help="cProfile each driver into its folder (with --keep)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Ray Tune runs of each size")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size:
        (bare_child if args.bare else child)(args)
        return
    sizes = [20, 100] if args.quick else sorted(args.trials)
    cpus = os.cpu_count() or 1
    print(f"{' vs '.join(map(str, sizes))} trials x {EPOCHS} reports, {args.search} search, FIFO, "
          f"SQLite store, {cpus} CPUs", flush=True)  # fmt: skip
    results = []
    for size in sizes:
        workdir = Path(tempfile.mkdtemp(prefix=f"rts-scale-{size}-"))
        out = run_size(size, args, workdir)
        out["report_s"] = time_report(out["sweep_dir"], workdir)
        out.update(list_children(out, workdir))
        out["workdir"] = workdir
        if not args.no_bare:
            out["bare"] = run_bare(size, args)
        results.append(out)
        print(f"  {size} trials: sweep {out['wall_s']:.1f} s, max load average {out['load']:.2f}"
              f"{', kept in ' + str(workdir) if args.keep or args.profile else ''}", flush=True)  # fmt: skip
        if not (args.keep or args.profile):
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print(row("trials", [r["trials"] for r in results], "d"))
    print(row("sweep wall s (run_sweep)", [r["wall_s"] for r in results], ".1f"))
    print(row("fit s", [r["fit_s"] for r in results], ".1f"))
    print(row("trials per second (wall)", [r["trials"] / r["wall_s"] for r in results], ".2f"))
    print(row("driver cost per trial ms (wall/n)", [1000 * r["wall_s"] / r["trials"] for r in results], ".1f"))
    print(row("fit per trial ms (fit/n)", [1000 * r["fit_s"] / r["trials"] for r in results], ".1f"))
    print(row("driver RSS after ray.init MB", [r["rss_ray_mb"] for r in results], ".0f"))
    print(row("  + one-time imports MB", [r["rss_base_mb"] - r["rss_ray_mb"] for r in results], ".0f"))
    print(row("driver peak RSS MB", [r["rss_peak_mb"] for r in results], ".0f"))
    print(row("driver RSS growth MB (the trials)", [r["rss_peak_mb"] - r["rss_base_mb"] for r in results], ".0f"))
    print(row("  of which until fit ended MB", [r["rss_fit_peak_mb"] - r["rss_base_mb"] for r in results], ".0f"))
    print(row("MLflow calls", [r["writes"] for r in results], "d"))
    print(row("MLflow calls per second (wall)", [r["writes"] / r["wall_s"] for r in results], ".1f"))
    print(row("writer thread busy s", [r["write_s"] for r in results], ".1f"))
    print(row("write queue max backlog", [r["max_backlog"] for r in results], "d"))
    print(row("progress lines printed", [r["progress_lines"] for r in results], "d"))
    print(row("raytune-suite report s", [r["report_s"] for r in results], ".1f"))
    print(row("REST list children s", [r["list_s"] for r in results], ".2f"))
    print(row("children listed", [r["children"] for r in results], "d"))
    print(row("children complete", [r["complete"] for r in results], "d"))
    print(row("load average (1 min, max)", [r["load"] for r in results], ".2f"))
    if all("bare" in r for r in results):
        print("bare Ray Tune, the same trials (no MLflow, no report):")
        print(row("trials per second (wall)", [r["bare"]["trials"] / r["bare"]["wall_s"] for r in results], ".2f"))
        print(row("driver RSS growth MB", [r["bare"]["rss_peak_mb"] - r["bare"]["rss_base_mb"] for r in results],
                  ".0f"))  # fmt: skip
        if len(results) > 1:
            suite_kb, bare_kb = (
                1024
                * (growth_of(results[-1], key) - growth_of(results[0], key))
                / (results[-1]["trials"] - results[0]["trials"])
                for key in (None, "bare")
            )
            print(f"  driver RSS per extra trial: the suite {suite_kb:.0f} KB, bare Ray Tune {bare_kb:.0f} KB")
    small, big = results[0], results[-1]
    ratio = (big["wall_s"] / big["trials"]) / (small["wall_s"] / small["trials"])
    fit_ratio = (big["fit_s"] / big["trials"]) / (small["fit_s"] / small["trials"])
    growth = big["rss_peak_mb"] - big["rss_base_mb"]
    more = big["trials"] - small["trials"]  # 0 with a single size
    per_trial_kb = 1024 * (growth - (small["rss_peak_mb"] - small["rss_base_mb"])) / max(1, more)
    complete = all(r["children"] == r["trials"] == r["complete"] for r in results)
    goals = [
        (f"cost per trial {big['trials']} / {small['trials']} = {ratio:.2f} (fit only {fit_ratio:.2f})",
         ratio <= MAX_COST_RATIO, f"<= {MAX_COST_RATIO}"),
        (f"driver RSS growth at {big['trials']}: {growth:.0f} MB ({per_trial_kb:.0f} KB per trial more than at "
         f"{small['trials']})", growth <= MAX_RSS_GROWTH_MB, f"<= {MAX_RSS_GROWTH_MB:.0f} MB"),
        (f"children complete: {', '.join(str(r['complete']) + '/' + str(r['trials']) for r in results)}", complete,
         "all"),
        (f"report at {big['trials']}: {big['report_s']:.1f} s", big["report_s"] <= MAX_REPORT_S,
         f"<= {MAX_REPORT_S:.0f} s"),
        (f"progress lines at {big['trials']}: {big['progress_lines']}",
         big["progress_lines"] <= LINES_PER_TRIAL * big["trials"], f"<= {LINES_PER_TRIAL * big['trials']:.0f}"),
    ]  # fmt: skip
    loaded = max(r["load"] for r in results) > cpus
    print(f"goals (issue #12){' — LOADED machine: load average above ' + str(cpus) if loaded else ''}:")
    for text, ok, goal in goals:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}  (goal {goal})")
    sys.exit(0 if all(ok for _, ok, _ in goals) else 1)


if __name__ == "__main__":
    main()
