"""`make bench-search`: does the default search beat random search, on many problems, in minutes?

    python -m benchmarks.searchbench                       # every problem and strategy, 20 seeds (~15 min, 2 CPUs)
    python -m benchmarks.searchbench --quick               # 3 problems, 3 seeds: a smoke run
    python -m benchmarks.searchbench --problems mnist_cnn,mfh6_good --strategies random+asha,hyperopt+asha

Every (problem, strategy, seed) replays one sweep in simulated time (`simulate.py`) with `--workers` trials at
once, until `--budget` full trainings' worth of trial-epochs are spent. Per run: the trial-epochs (and simulated
seconds) until the best value reported reached the problem's target (the value of its best 1 % of
configurations), and the normalised regret after 1, 3, 10 and 30 full trainings. Per problem and strategy: the
interquartile mean over seeds with a bootstrap 95 % interval (`stats.py`); per strategy, the median over problems
of its speed-up over random + ASHA. Written to `--out`: `runs.csv` (a row per run), `curves.csv` (regret against
trial-epochs), `summary.txt`, `anytime_<problem>.png` and `summary.png`, all logged to an MLflow run (experiment
`search_benchmark`) in `--mlflow-uri`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from benchmarks.searchbench.problems import SYNTHETIC, TABLES, load_problem
from benchmarks.searchbench.simulate import simulate
from benchmarks.searchbench.strategies import ALL, STRATEGIES, available, budget_epochs

BUDGETS = (1, 3, 10, 30)  # full trainings at which regret is reported
CURVE_POINTS = 48  # log-spaced budgets of the anytime curves
QUICK = {"problems": "mnist_cnn,mfh3_good,diabetes_linear", "seeds": 3}


def run_one(problem_name: str, strategy: str, seeds: list[int], workers: int, budget: float) -> list[dict]:
    """Every seed of one problem and strategy (one process's task)."""
    problem = load_problem(problem_name)
    cap = budget_epochs(problem, budget)
    grid = np.unique(np.geomspace(1, cap, CURVE_POINTS).astype(int))
    rows = []
    for seed in seeds:
        started = time.perf_counter()
        trace = simulate(problem, ALL[strategy](problem, seed, workers), workers, cap)
        hit = trace.first_reaching(problem.target, problem.sign)
        row = {
            "problem": problem_name,
            "strategy": strategy,
            "seed": seed,
            "trials": trace.trials,
            "trial_epochs": trace.spent[-1] if trace.spent else 0,
            "reached": hit is not None,
            "epochs_to_target": hit[0] if hit else cap,
            "seconds_to_target": hit[1] if hit else (trace.clock[-1] if trace.clock else 0.0),
            "best": trace.incumbent[-1] if trace.incumbent else None,
            "replay_s": round(time.perf_counter() - started, 3),
        }
        for b in BUDGETS:
            row[f"regret_{b}x"] = problem.regret(trace.best_within(budget_epochs(problem, b)))
        row["curve"] = [(int(x), problem.regret(trace.best_within(x))) for x in grid]
        rows.append(row)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default=",".join([*TABLES, *SYNTHETIC]))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="trials at once in each replayed sweep")
    parser.add_argument("--budget", type=float, default=30, help="full trainings' worth of trial-epochs per run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--out", type=Path, default=Path("searchbench_results"))
    parser.add_argument("--mlflow-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///<out>/mlflow.db")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:
        args.problems, args.seeds = QUICK["problems"], QUICK["seeds"]
    args.problems = args.problems.split(",")
    args.strategies = args.strategies.split(",")
    for name in args.problems:
        load_problem(name)  # an unknown name: one line, before anything runs
    unknown = [s for s in args.strategies if s not in ALL]
    if unknown:
        parser.error(f"unknown strategy {unknown[0]!r}; the strategies are: {', '.join(ALL)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = available()
    skipped = [s for s in args.strategies if s in missing]
    for s in skipped:
        print(f"skipping {s}: pip install {missing[s]} (or pip install -e '.[bench]')", flush=True)
    strategies = [s for s in args.strategies if s not in missing]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tasks = [(p, s) for p in args.problems for s in strategies]
    # The slow tasks first (HyperOpt's TPE costs most per trial), so the processes finish together.
    tasks.sort(key=lambda t: ("hyperopt" not in t[1], t[1] == "random+fifo"))
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        seeds = list(range(args.seeds))
        futures = {pool.submit(run_one, p, s, seeds, args.workers, args.budget): (p, s) for p, s in tasks}
        for done, future in enumerate(as_completed(futures), 1):
            rows += future.result()
            p, s = futures[future]
            print(f"[{done}/{len(tasks)}] {p} {s}: {time.monotonic() - started:.0f} s", flush=True)
    wall = time.monotonic() - started
    from benchmarks.searchbench import report

    artifacts = report.write_all(rows, args, wall)
    print((args.out / "summary.txt").read_text())
    uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(args.out / 'mlflow.db').resolve()}"
    run_id = report.log_to_mlflow(uri, rows, args, artifacts, wall)
    print(f"benchmark wall time {wall:.0f} s on {args.jobs} processes; wrote {args.out}/; MLflow run {run_id} in {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
