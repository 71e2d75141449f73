"""Scheduling overhead of a sweep: the suite versus bare Ray Tune, on the same fixed-duration trainable.

N trials each sleep for EPOCHS × EPOCH_S seconds (reporting once per epoch, as real trials do) on all CPUs of a
fresh local Ray instance. Ideal wall time = N × EPOCHS × EPOCH_S / CPUs. Each variant runs in its own process so
that "whole command" includes Python imports, `ray.init` and shutdown, as a user pays them. Three variants: `bare`
(Ray Tune as its docs show it), `bare+torch` (the same script importing torch first, as any script tuning a PyTorch
model does) and `suite`.

    python benchmarks/sweep_overhead.py                 # 40 trials x 1 s, each variant once
    python benchmarks/sweep_overhead.py --repeats 3     # 3 runs of each, interleaved, and their medians
    python benchmarks/sweep_overhead.py --trials 20 --epochs 5 --epoch-s 0.2

Prints ideal/actual efficiency for `fit()` alone and for the whole command, and where the rest of the command's
time goes: seconds from process start to imports done, Ray up, the first trial started, `fit()` returned, exit.
The suite's variant calls `run_sweep` as `raytune-suite run` does after its preflight (the CLI's input checks and
smoke step, ~2-4 s here, are not in these figures).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = time.monotonic()
REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("bare", "bare+torch", "suite")


def sleep_trainable(config: dict) -> None:
    """A trial of known duration: `epochs` reports, `epoch_s` seconds apart. Appends (pid, entered, left) in wall
    time to the timeline file, from which `fit()`'s time is split into start-up, trials, gaps and tail."""
    from ray import tune

    bench = config["bench"] if "bench" in config else config["suite"]["bench"]
    entered = time.time()
    for epoch in range(1, bench["epochs"] + 1):
        time.sleep(bench["epoch_s"])
        tune.report({"epoch": epoch, "val_accuracy": 0.5 + epoch * 0.01, "train_loss": 1.0 / epoch})
    with open(bench["timeline"], "a") as out:  # one short line per trial: appends of this size do not interleave
        out.write(json.dumps([os.getpid(), entered, time.time()]) + "\n")


def run_bare(args: argparse.Namespace, workdir: Path) -> dict:
    """Ray Tune as its docs show it, with actor reuse on: the baseline to beat. As `bare+torch`, the same script
    importing torch first, as a script tuning a PyTorch model does (the suite's config check imports the torch
    experiment's module, and torch with it, before Ray starts)."""
    if args.variant == "bare+torch":
        import torch  # noqa: F401
    import ray
    from ray import tune

    class FirstTrial(tune.Callback):
        started: float | None = None

        def on_trial_start(self, iteration, trials, trial, **info):
            FirstTrial.started = FirstTrial.started or time.monotonic()

    phases = {"imports": time.monotonic() - START}
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    phases["ray_up"] = time.monotonic() - START
    tuner = tune.Tuner(
        sleep_trainable,
        param_space={"x": tune.uniform(0, 1), "bench": bench_settings(args, workdir)},
        tune_config=tune.TuneConfig(num_samples=args.trials, reuse_actors=True, metric="val_accuracy", mode="max"),
        run_config=tune.RunConfig(storage_path=str(workdir / "ray_results"), verbose=0, callbacks=[FirstTrial()]),
    )
    started, fit_wall = time.monotonic(), time.time()
    tuner.fit()
    phases["fit_end"] = time.monotonic() - START
    phases["fit_s"] = time.monotonic() - started
    phases["first_trial"] = (FirstTrial.started or started) - START
    ray.shutdown()
    return {**phases, **timeline(workdir, fit_wall, fit_wall + phases["fit_s"], args)}


def run_suite(args: argparse.Namespace, workdir: Path) -> dict:
    """The same trials through raytune_suite: typed config, searcher, MLflow parent/child runs, progress lines."""
    from raytune_suite.cli import skip_final_collection
    from raytune_suite.config import load_config
    from raytune_suite.run.sweep import run_sweep

    overrides = [
        "data.dataset=digits", f"train.epochs={args.epochs}", f"tune.num_samples={args.trials}",
        "tune.search=random", "tune.scheduler=fifo", "space={train: {lr: {type: loguniform, low: 1e-4, high: 1e-1}}}",
    ]  # fmt: skip
    cfg = load_config(REPO / "experiments" / "mnist_cnn.yaml", overrides)
    offset, called_wall = time.monotonic() - START, time.time()
    result = run_sweep(
        cfg,
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
        storage=str(workdir / "ray_results"),
        trainable=_with_bench(bench_settings(args, workdir)),
    )
    skip_final_collection()  # as the console script does before it exits
    fit_end_wall = called_wall + result.phases["fit_end"]
    return {
        "imports": offset, "fit_s": result.fit_s, **{k: offset + v for k, v in result.phases.items()},
        **timeline(workdir, fit_end_wall - result.fit_s, fit_end_wall, args),
    }  # fmt: skip


def bench_settings(args: argparse.Namespace, workdir: Path) -> dict:
    return {"epochs": args.epochs, "epoch_s": args.epoch_s, "timeline": str(workdir / "timeline.jsonl")}


def timeline(workdir: Path, fit_start: float, fit_end: float, args: argparse.Namespace) -> dict:
    """Where `fit()`'s time went, from the trials' own (pid, entered, left) wall times: `startup` from `fit()` to
    the first trial's code running; `extra` the mean seconds a trial took beyond its sleeps (each report waits
    for Tune's loop to collect it); `gap` the mean seconds a worker process waited between one trial's end and its
    next trial's start (actor reuse); `tail` from the last trial's end to `fit()` returning."""
    spans = [json.loads(line) for line in (workdir / "timeline.jsonl").read_text().splitlines()]
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for pid, entered, left in spans:
        by_pid.setdefault(pid, []).append((entered, left))
    gaps = [b[0] - a[1] for runs in by_pid.values() for a, b in itertools.pairwise(sorted(runs))]
    return {
        "startup": min(s[1] for s in spans) - fit_start,
        "extra": statistics.mean(s[2] - s[1] for s in spans) - args.epochs * args.epoch_s,
        "gap": statistics.mean(gaps) if gaps else 0.0,
        "tail": fit_end - max(s[2] for s in spans),
        "workers": len(by_pid),
    }


def _with_bench(bench: dict):
    def trainable(config: dict) -> None:
        sleep_trainable({**config, "bench": bench})

    trainable.__name__ = "sleep_trainable"
    return trainable


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="rts-bench-") as tmp:
        phases = {"bare": run_bare, "bare+torch": run_bare, "suite": run_suite}[args.variant](args, Path(tmp))
    print(json.dumps(phases))


def measure(variant: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--variant", variant, "--trials", str(args.trials),
           "--epochs", str(args.epochs), "--epoch-s", str(args.epoch_s)]  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "command_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epoch-s", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant, interleaved; medians printed")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args)
        return
    cpus = os.cpu_count() or 1
    ideal = args.trials * args.epochs * args.epoch_s / cpus
    print(f"{args.trials} trials x {args.epochs * args.epoch_s:g} s on {cpus} CPUs: ideal {ideal:.1f} s")
    print(f"{'variant':10s} {'fit s':>7s} {'fit eff':>8s} {'command s':>10s} {'command eff':>12s}   "
          "seconds from start: imports, Ray up, 1st trial, fit() returned   inside fit(): start-up, per trial "
          "beyond its sleeps, gap between trials on a worker, tail; worker processes")  # fmt: skip
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.repeats):
        for variant in runs:  # interleaved, so that a change of load hits every variant alike
            m = measure(variant, args)
            runs[variant].append(m)
            print(line(variant, m, ideal), flush=True)
    if args.repeats > 1:
        print(f"median of {args.repeats} runs each (load average now {os.getloadavg()[0]:.2f}):")
        for variant, ms in runs.items():
            print(line(variant, {k: statistics.median(m[k] for m in ms) for k in ms[0]}, ideal), flush=True)


def line(variant: str, m: dict, ideal: float) -> str:
    marks = "  ".join(f"{m[k]:5.1f}" for k in ("imports", "ray_up", "first_trial", "fit_end"))
    inside = f"{m['startup']:5.2f}  {m['extra']:5.3f}  {m['gap']:5.3f}  {m['tail']:5.2f}; {m['workers']:.0f}"
    return (
        f"{variant:10s} {m['fit_s']:7.1f} {ideal / m['fit_s']:8.2f} {m['command_s']:10.1f} "
        f"{ideal / m['command_s']:12.2f}   {marks}   (exit {m['command_s']:.1f})   {inside}"
    )


if __name__ == "__main__":
    main()
