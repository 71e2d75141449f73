"""The benchmark's outputs: runs.csv, curves.csv, summary.txt, an anytime plot per problem, a summary plot, and
an MLflow run holding them."""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.searchbench import stats
from benchmarks.searchbench.problems import load_problem
from benchmarks.searchbench.strategies import BASELINE, DEFAULT

PEER = "optuna-tpe+sh"
COLUMNS = ("problem", "strategy", "seed", "trials", "trial_epochs", "reached", "epochs_to_target",
           "seconds_to_target", "best", "regret_1x", "regret_3x", "regret_10x", "regret_30x", "replay_s")  # fmt: skip


def by(rows: list[dict], problem: str, strategy: str, key: str) -> list[float]:
    return [r[key] for r in rows if r["problem"] == problem and r["strategy"] == strategy]


def ordered(rows: list[dict], key: str) -> list[str]:
    return list(dict.fromkeys(r[key] for r in rows))


def speedups(rows: list[dict], baseline: str, key: str = "epochs_to_target") -> dict[tuple[str, str], tuple]:
    """(problem, strategy) -> (speed-up over `baseline`, low, high): IQM ratio with its bootstrap interval."""
    out = {}
    for p in ordered(rows, "problem"):
        base = by(rows, p, baseline, key)
        for s in ordered(rows, "strategy"):
            other = by(rows, p, s, key)
            if base and other:
                out[p, s] = stats.speedup(base, other)
    return out


def summary_lines(rows: list[dict], wall: float, args) -> list[str]:
    problems, strategies = ordered(rows, "problem"), ordered(rows, "strategy")
    seeds = len({r["seed"] for r in rows})
    lines = [
        f"Search benchmark: {len(problems)} problems x {len(strategies)} strategies x {seeds} seeds, "
        f"{args.workers} trials at once, budget {args.budget:g} full trainings per run; {wall:.0f} s wall time",
        "time to target: trial-epochs until the best value reported reached the problem's top-1 % value (IQM over "
        "seeds [bootstrap 95 %], reached/seeds; a miss counts as the budget); regret: 0 = best config, 1 = median",
        "",
    ]
    vs_base = speedups(rows, BASELINE) if BASELINE in strategies else {}
    vs_base_s = speedups(rows, BASELINE, "seconds_to_target") if BASELINE in strategies else {}
    for p in problems:
        problem = load_problem(p)
        lines.append(
            f"{p}: {problem.about}; best {problem.optimum:.4g}, median {problem.median:.4g}, target "
            f"{problem.target:.4g} ({problem.metric}, {problem.mode}), full training {problem.epochs} epochs"
        )
        lines.append(f"  {'strategy':28s} {'epochs to target':>26s} {'regret@1x':>9s} {'@3x':>6s} {'@10x':>6s} "
                     f"{'@30x':>6s} {'speed-up vs ' + BASELINE:>26s} {'in sim. time':>12s}")  # fmt: skip
        for s in strategies:
            ttt = by(rows, p, s, "epochs_to_target")
            if not ttt:
                continue
            lo, hi = stats.bootstrap_iqm(ttt)
            reached = sum(by(rows, p, s, "reached"))
            regrets = [stats.iqm(by(rows, p, s, f"regret_{b}x")) for b in (1, 3, 10, 30)]
            up = vs_base.get((p, s))
            up_s = vs_base_s.get((p, s))
            lines.append(
                f"  {s:28s} {stats.iqm(ttt):7.0f} [{lo:5.0f}, {hi:5.0f}] {reached:2d}/{len(ttt):<2d}  "
                + " ".join(f"{x:6.3f}" for x in regrets)
                + (f"   {up[0]:5.2f}x [{up[1]:4.2f}, {up[2]:4.2f}]" if up else "")
                + (f"  {up_s[0]:9.2f}x" if up_s else "")
            )
        lines.append("")
    lines += verdict_lines(rows, vs_base)
    return lines


def verdict_lines(rows: list[dict], vs_base: dict) -> list[str]:
    """Per strategy the median over problems of its speed-up over random + ASHA; then the issue's goal, checked."""
    problems, strategies = ordered(rows, "problem"), ordered(rows, "strategy")
    lines = [f"median over {len(problems)} problems of the speed-up over {BASELINE} (epochs to target):"]
    for s in strategies:
        ups = [vs_base[p, s][0] for p in problems if (p, s) in vs_base]
        if ups:
            lines.append(f"  {s:28s} {statistics.median(ups):5.2f}x  (per problem: "
                         + ", ".join(f"{u:.2f}" for u in ups) + ")")  # fmt: skip
    if DEFAULT not in strategies or BASELINE not in strategies:
        return lines
    ups = {p: vs_base[p, DEFAULT] for p in problems}
    worse = [p for p, (_, _, hi) in ups.items() if hi < 1]
    median = statistics.median(u[0] for u in ups.values())
    lines += [
        "",
        f"the default ({DEFAULT}):",
        f"  median speed-up over {BASELINE}: {median:.2f}x (goal: >= 2)",
        f"  worse than {BASELINE} beyond its interval on: {', '.join(worse) or 'no problem'} (goal: none)",
    ]
    if PEER in strategies:
        vs_peer = speedups(rows, PEER)
        peer_ups = {p: vs_peer[p, DEFAULT] for p in problems}
        lines.append(
            f"  median speed-up over {PEER}: {statistics.median(u[0] for u in peer_ups.values()):.2f}x (goal: >= 1); "
            "per problem: " + ", ".join(f"{p} {u[0]:.2f} [{u[1]:.2f}, {u[2]:.2f}]" for p, u in peer_ups.items())
        )
    return lines


def write_csvs(rows: list[dict], out: Path) -> list[Path]:
    runs, curves = out / "runs.csv", out / "curves.csv"
    with runs.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with curves.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["problem", "strategy", "seed", "trial_epochs", "regret"])
        for r in rows:
            writer.writerows([r["problem"], r["strategy"], r["seed"], x, f"{y:.6g}"] for x, y in r["curve"])
    return [runs, curves]


def plot_anytime(rows: list[dict], problem: str, out: Path) -> Path:
    """IQM regret over seeds against trial-epochs, one line per strategy, the seeds' interquartile range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    epochs = load_problem(problem).epochs
    for s in ordered(rows, "strategy"):
        runs = [r["curve"] for r in rows if r["problem"] == problem and r["strategy"] == s]
        if not runs:
            continue
        xs = np.array([x for x, _ in runs[0]]) / epochs
        ys = np.array([[y for _, y in c] for c in runs])
        line = ax.plot(xs, [stats.iqm(col) for col in ys.T], label=s, lw=2.2 if s == DEFAULT else 1.2)
        ax.fill_between(xs, np.quantile(ys, 0.25, axis=0), np.quantile(ys, 0.75, axis=0), alpha=0.12,
                        color=line[0].get_color())  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("trial-epochs, in full trainings")
    ax.set_ylabel("normalised regret (IQM over seeds)")
    ax.set_ylim(0, 1.2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{problem}: regret so far")
    path = out / f"anytime_{problem}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_summary(rows: list[dict], out: Path) -> Path:
    """Speed-up over random + ASHA per problem and strategy (log scale), with bootstrap intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vs_base = speedups(rows, BASELINE)
    problems = ordered(rows, "problem")
    strategies = [s for s in ordered(rows, "strategy") if s != BASELINE]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(problems)), 4.8))
    width = 0.8 / max(1, len(strategies))
    for i, s in enumerate(strategies):
        xs = np.arange(len(problems)) + (i - (len(strategies) - 1) / 2) * width
        ups = np.array([vs_base[p, s] for p in problems])
        ax.bar(xs, ups[:, 0], width, label=f"{s} (median {statistics.median(ups[:, 0]):.2f}x)",
               yerr=[ups[:, 0] - ups[:, 1], ups[:, 2] - ups[:, 0]], capsize=2,
               edgecolor="black" if s == DEFAULT else None, linewidth=1.5 if s == DEFAULT else 0)  # fmt: skip
    ax.axhline(1, color="black", lw=0.8)
    ax.axhline(2, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ticks = [t for t in (0.25, 0.5, 1, 2, 4, 8) if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    ax.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    ax.minorticks_off()
    ax.set_xticks(np.arange(len(problems)), problems, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(f"speed-up over {BASELINE} (epochs to target)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, axis="y")
    path = out / "summary.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_all(rows: list[dict], args, wall: float) -> list[Path]:
    out = args.out
    summary = out / "summary.txt"
    summary.write_text("\n".join(summary_lines(rows, wall, args)) + "\n")
    artifacts = [*write_csvs(rows, out), summary]
    artifacts += [plot_anytime(rows, p, out) for p in ordered(rows, "problem")]
    if BASELINE in ordered(rows, "strategy"):
        artifacts.append(plot_summary(rows, out))
    return artifacts


def metric_name(strategy: str) -> str:
    """MLflow metric names take no '+', spaces or parentheses."""
    return "".join(c if c.isalnum() or c in "._-/" else "_" for c in strategy).strip("_")


def log_to_mlflow(uri: str, rows: list[dict], args, artifacts: list[Path], wall: float) -> str:
    """One run in experiment `search_benchmark`: the settings, each strategy's median speed-up, the files."""
    import mlflow

    from raytune_suite.track.store import experiment_id_for

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    mlflow.set_experiment(experiment_id=experiment_id_for(client, "search_benchmark", uri))
    with mlflow.start_run(run_name=f"searchbench-{time.strftime('%Y%m%d-%H%M%S')}") as run:
        mlflow.log_params(
            {
                "problems": ",".join(args.problems),
                "strategies": ",".join(ordered(rows, "strategy")),
                "seeds": args.seeds,
                "workers": args.workers,
                "budget_full_trainings": args.budget,
            }
        )
        mlflow.log_metric("wall_s", wall)
        if BASELINE in ordered(rows, "strategy"):
            vs_base = speedups(rows, BASELINE)
            for s in ordered(rows, "strategy"):
                ups = [vs_base[p, s][0] for p in ordered(rows, "problem")]
                mlflow.log_metric(f"{metric_name(s)}.median_speedup", statistics.median(ups))
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id
