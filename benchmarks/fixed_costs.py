"""Does `validate --plan --calibrate` hold, and where does a small sweep's time go?

`plan`: for each config, `raytune-suite validate CONFIG --plan --calibrate` (its estimate, split as `run` splits its
time), then `raytune-suite run CONFIG`, timed from outside, each in a fresh folder (a new store) and its own Ray temp
folder; prints estimate, measured and their ratio. Defaults: `experiments/mnist_cnn.yaml` (what `make demo` runs),
`docs/examples/wine_mlp.yaml` (small data: 133 training examples) and the 12-point SVC grid.

`small`: the 12-point SVC grid (`benchmarks/experiments/breast_cancer_svc.yaml`, 5-fold CV on 569 examples) as
GridSearchCV runs it, as `raytune-suite run` runs it cold (starting its own Ray), and against a Ray already running
on this machine (`ray start --head` with its own temp folder, ports and token, stopped by process group here), each
with `run`'s own split of its time.

    python benchmarks/fixed_costs.py [plan|small|all] [--configs CONFIG ...] [--repeats N] [--port-base P]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SVC = REPO / "benchmarks" / "experiments" / "breast_cancer_svc.yaml"
CONFIGS = [REPO / "experiments" / "mnist_cnn.yaml", REPO / "docs" / "examples" / "wine_mlp.yaml", SVC]
CLI = [sys.executable, "-m", "raytune_suite.cli"]
RAY = str(Path(sys.executable).parent / "ray")
TIME_LINE = re.compile(
    r"time: (?P<total>[\d.]+) s = start-up (?P<startup>[\d.]+) s \(imports and checks (?P<checks>[\d.]+) s, Ray and "
    r"MLflow (?P<ray>[\d.]+) s\) \+ fit\(\) (?P<fit>[\d.]+) s \(first trial at (?P<first>[\d.]+) s\) \+ publishing "
    r"(?P<publishing>[\d.]+) s"
)
DURATION = r"([\d.]+) (s|min|h)"
PLAN_LINE = re.compile(
    rf"wall time: ≈ {DURATION} = start-up ([\d.]+) s \+ fit\(\) {DURATION} \(work: .*≈ {DURATION}\) \+ publishing "
    r"([\d.]+) s"
)
UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}


def seconds(value: str, unit: str) -> float:
    return float(value) * UNITS[unit]


def cli(args: list[str], env: dict[str, str], timeout: float = 900) -> tuple[str, float]:
    """`raytune-suite ARGS` in a fresh folder with a Ray temp folder of its own: (its output, its wall time)."""
    with tempfile.TemporaryDirectory(prefix="rts-bench-") as cwd, tempfile.TemporaryDirectory(prefix="rts-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run([*CLI, *args], cwd=cwd, env={**env, "RAY_TMPDIR": tmp}, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr, wall


def time_split(output: str) -> dict[str, float]:
    found = TIME_LINE.search(output)
    if not found:
        raise SystemExit(f"no time line in:\n{output[-2000:]}")
    return {k: float(v) for k, v in found.groupdict().items()}


def plan_estimate(output: str) -> dict[str, float]:
    found = PLAN_LINE.search(output)
    if not found:
        raise SystemExit(f"no wall time line in:\n{output[-2000:]}")
    g = found.groups()
    return {"total": seconds(g[0], g[1]), "startup": float(g[2]), "fit": seconds(g[3], g[4]),
            "work": seconds(g[5], g[6]), "publishing": float(g[7])}  # fmt: skip


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def plan_vs_run(configs: list[Path], repeats: int, env: dict[str, str]) -> None:
    print(f"plan estimate vs measured command ({os.cpu_count()} CPUs); split: start-up / fit() / publishing")
    for config in configs:
        for _ in range(repeats):
            load_before = load()
            out, plan_wall = cli(["validate", str(config), "--plan", "--calibrate"], env)
            est = plan_estimate(out)
            fixed = next(line.strip() for line in out.splitlines() if "fixed costs here" in line)
            out, wall = cli(["run", str(config)], env)
            got = time_split(out)
            print(
                f"  {config.name}: estimate {est['total']:.1f} s ({est['startup']:.1f} / {est['fit']:.1f} / "
                f"{est['publishing']:.1f}; work {est['work']:.2f} s), measured {wall:.1f} s ({got['startup']:.1f} / "
                f"{got['fit']:.1f} / {got['publishing']:.1f}), measured/estimate {wall / est['total']:.2f}; "
                f"calibrating took {plan_wall:.1f} s; load {load_before} -> {load()}\n    {fixed}"
            )


def gridsearchcv() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from sklearn.model_selection import GridSearchCV
    from sklearn_gridsearch import estimator_grid

    from raytune_suite.config import load_config
    from raytune_suite.experiments import load_experiment
    from raytune_suite.train.estimators import cv_splitter

    cfg = load_config(SVC, [])
    experiment = load_experiment(cfg.experiment)
    started = time.perf_counter()
    x, y = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    loaded = time.perf_counter() - started
    estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(cfg.model))
    configs, grids = estimator_grid(cfg, experiment)
    folds = cv_splitter(cfg.cv, estimator, y, cfg.tune.split_seed)
    for n_jobs in (1, 2):
        started = time.perf_counter()
        search = GridSearchCV(estimator, grids, cv=folds, scoring=cfg.cv.scoring, n_jobs=n_jobs).fit(x, y)
        took = time.perf_counter() - started
        print(f"  GridSearchCV n_jobs={n_jobs}: {took:.2f} s in-process (data {loaded:.2f} s), "
              f"best {configs[search.best_index_]} {search.best_score_:.4f}")  # fmt: skip
    command = ("import time; t = time.perf_counter(); import sklearn.model_selection, sklearn.svm, "
               "sklearn.datasets; print(time.perf_counter() - t)")  # fmt: skip
    started = time.perf_counter()
    imports = float(subprocess.run([sys.executable, "-c", command], capture_output=True, text=True).stdout)
    print(f"  a python process importing scikit-learn: {time.perf_counter() - started:.2f} s ({imports:.2f} s of "
          "imports): what a GridSearchCV script pays before it starts")  # fmt: skip


def start_head(port_base: int, env: dict[str, str], folder: Path, num_cpus: int | None = None) -> subprocess.Popen:
    """`ray start --head --block` on 127.0.0.1 with its own temp folder, ports and token; its own process group."""
    b = port_base
    ports = ["--port", str(b), "--ray-client-server-port", str(b + 2), "--node-manager-port", str(b + 3),
             "--object-manager-port", str(b + 4), "--dashboard-agent-listen-port", str(b + 5),
             "--dashboard-agent-grpc-port", str(b + 6), "--runtime-env-agent-port", str(b + 7),
             "--metrics-export-port", str(b + 8), "--min-worker-port", str(b + 10),
             "--max-worker-port", str(b + 59)]  # fmt: skip
    command = [RAY, "start", "--head", "--block", "--temp-dir", str(folder / "ray"), "--node-ip-address",
               "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats", "--num-cpus",
               str(num_cpus or os.cpu_count()), *ports]  # fmt: skip
    log = open(folder / "head.log", "w")  # noqa: SIM115  (the head writes it until it stops)
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in (folder / "head.log").read_text():
        if head.poll() is not None or time.monotonic() > deadline:
            stop_head(head)
            raise SystemExit(f"the head did not start:\n{(folder / 'head.log').read_text()[-2000:]}")
        time.sleep(0.5)
    return head


def stop_head(head: subprocess.Popen) -> None:
    """By its process group, never `ray stop` (which stops every Ray on the machine)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(head.pid, sig)
            head.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def small_sweep(repeats: int, port_base: int, env: dict[str, str]) -> None:
    print(f"the 12-point SVC grid ({SVC.relative_to(REPO)}), {os.cpu_count()} CPUs, load {load()}")
    gridsearchcv()
    parts = ("total", "checks", "ray", "first", "fit", "publishing")

    def show(label: str, runs: list[tuple[float, dict[str, float]]]) -> None:
        for wall, split in runs:
            print(f"  {label}: {wall:.1f} s command; " + ", ".join(f"{k} {split[k]:.1f}" for k in parts[1:]))
        print(f"  {label}, median of {len(runs)}: {statistics.median(w for w, _ in runs):.1f} s command; "
              + ", ".join(f"{k} {statistics.median(s[k] for _, s in runs):.1f}" for k in parts[1:]))  # fmt: skip

    cold = []
    for _ in range(repeats):
        out, wall = cli(["run", str(SVC)], env)
        cold.append((wall, time_split(out)))
    show("raytune-suite run, cold", cold)
    with tempfile.TemporaryDirectory(prefix="rts-head-") as folder:
        token = Path(folder) / "token"
        token.write_text(os.urandom(32).hex())
        token.chmod(0o600)
        auth = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        started = time.perf_counter()
        head = start_head(port_base, auth, Path(folder))
        print(f"  ray start --head: {time.perf_counter() - started:.1f} s, once")
        try:
            warm = []
            for _ in range(repeats):
                out, wall = cli(["run", str(SVC), "--address", f"127.0.0.1:{port_base}"], auth)
                warm.append((wall, time_split(out)))
            show(f"raytune-suite run --address 127.0.0.1:{port_base}", warm)
        finally:
            stop_head(head)
    print(f"  load at the end {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="all", choices=["plan", "small", "all"])
    parser.add_argument("--configs", nargs="+", type=Path, default=CONFIGS)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--port-base", type=int, default=16700, help="the head's ports: P to P+59")
    args = parser.parse_args()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    if args.part in ("plan", "all"):
        plan_vs_run([c.resolve() for c in args.configs], args.repeats, env)
    if args.part in ("small", "all"):
        small_sweep(args.repeats, args.port_base, env)


if __name__ == "__main__":
    main()
