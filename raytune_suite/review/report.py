"""A sweep's report: results table, plots and one self-contained HTML page, read back from MLflow.

The MLflow store is the single source: the same code writes the artifacts on the parent run at the end of a
sweep and serves `raytune-suite report` later (from a parent run id, or from a sweep folder whose
`mlflow_runs.json` names the parent run and the store).

Plots (matplotlib, Agg backend, no display needed):
- `learning_curves.png`: the objective per epoch for every trial, ASHA's rungs as dotted lines, an x where a
  trial was stopped early, the best trial drawn thick.
- `parallel_coordinates.png`: one line per trial across the tuned parameters and the objective, coloured by it.
- `importance.png`: random-forest impurity importance of each tuned parameter for the trials' best values
  (categoricals one-hot encoded, their columns summed back to the parameter); needs a few trials.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from raytune_suite.config.objective import Objective
from raytune_suite.search.schedulers import asha_rungs

RESULTS_CSV = "results.csv"
HTML_PAGE = "report.html"
PLOTS = ("learning_curves.png", "parallel_coordinates.png", "importance.png")
# Fewer trials than this give a random forest nothing to split on: the importance plot is skipped.
MIN_TRIALS_FOR_IMPORTANCE = 5
LOG_TYPES = {"loguniform", "qloguniform"}


@dataclass
class TrialData:
    trial_id: str
    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    history: list[tuple[int, float]]


@dataclass
class SweepData:
    """Everything the report shows, as read from the store."""

    name: str
    parent_run_id: str
    experiment_id: str
    metric: str
    mode: str
    scheduler: str
    epochs: int
    rungs: list[int]
    space: dict[str, dict[str, Any]]
    trials: list[TrialData] = field(default_factory=list)
    # Results form learning curves (a torch sweep's epochs); an estimator sweep reports one cross-validated score
    # per trial: no curve, no early stop, no best epoch (the parent run's `step` tag, kinds.py).
    per_epoch: bool = True

    @property
    def objective(self) -> Objective:
        return Objective(self.metric, self.mode)

    @property
    def tuned(self) -> list[str]:
        """`section.name` of every tuned parameter, in the space's order."""
        return [f"{s}.{n}" for s, params in self.space.items() for n in params]

    def active(self, key: str, params: dict[str, str]) -> bool:
        """Whether a tuned parameter took part in a trial: a conditional one only where its `when` held (else its
        logged value is the unused default, and tables and plots show it as absent)."""
        section, _, name = key.partition(".")
        when = self.space.get(section, {}).get(name, {}).get("when") or {}
        chosen = {parent: params.get(f"{section}.{parent}") for parent in when}
        return all(value is None or value in {str(v) for v in when[p]} for p, value in chosen.items())

    def param_type(self, key: str) -> str:
        section, _, name = key.partition(".")
        return self.space.get(section, {}).get(name, {}).get("type", "uniform" if not name else "choice")


def rungs_below(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """ASHA's rungs before the last epoch: where the report draws a line (the last epoch is the plot's edge)."""
    return [round(r) for r in asha_rungs(grace_period, reduction_factor, max_t) if r < max_t]


def load_sweep(client, parent_run_id: str) -> SweepData:
    parent = client.get_run(parent_run_id)
    tags = parent.data.tags
    metric, _, old_mode = tags.get("metric", "").partition(" (")  # sweeps before the `mode` tag: "metric (mode)"
    mode = tags.get("mode") or old_mode.rstrip(")") or "max"
    cfg = yaml.safe_load(_artifact_text(client, parent_run_id, "config.yaml"))
    space = cfg.get("space") or {}
    tune_cfg = cfg.get("tune", {})
    epochs = int(cfg.get("train", {}).get("epochs", 1))
    rungs = []
    if tune_cfg.get("scheduler") == "asha":
        asha = tune_cfg.get("asha", {})
        rungs = rungs_below(int(asha.get("grace_period", 1)), float(asha.get("reduction_factor", 3)), epochs)
    step = tags.get("step") or ("cross-validation" if "cv.folds" in parent.data.params else "epoch")  # older sweeps
    sweep = SweepData(
        name=parent.info.run_name, parent_run_id=parent_run_id, experiment_id=parent.info.experiment_id,
        metric=metric, mode=mode, scheduler=tune_cfg.get("scheduler", ""), epochs=epochs, rungs=rungs, space=space,
        per_epoch=step == "epoch",
    )  # fmt: skip
    from raytune_suite.track.store import child_runs

    children = child_runs(client, parent.info.experiment_id, parent_run_id)
    for run in sorted(children, key=lambda r: r.info.start_time):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, metric))
        trial = TrialData(
            trial_id=run.info.run_name, run_id=run.info.run_id, status=run.info.status,
            params=dict(run.data.params), tags=dict(run.data.tags), history=history,
        )  # fmt: skip
        sweep.trials.append(trial)
    return sweep


def _artifact_text(client, run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_text()


def results_table(sweep: SweepData) -> pd.DataFrame:
    """One row per trial, best first: status, epochs trained, final and best objective, tuned config."""
    rows = []
    for t in sweep.trials:
        best = sweep.objective.best(v for _, v in t.history)
        best = float("nan") if best is None else best
        best_epoch = next((s for s, v in t.history if v == best), None)
        if sweep.per_epoch:
            row = {
                "trial": t.trial_id,
                "status": t.status,
                "stopped_early": t.tags.get("stopped_early", ""),
                "diverged": diverged(t),
                "epochs": int(t.history[-1][0]) if t.history else 0,
                f"final_{sweep.metric}": t.history[-1][1] if t.history else float("nan"),
                f"best_{sweep.metric}": best,
                "best_epoch": best_epoch,
            }
        else:  # one score per trial
            row = {"trial": t.trial_id, "status": t.status, "diverged": diverged(t), f"best_{sweep.metric}": best}
        row.update({k: _typed(t.params.get(k)) if sweep.active(k, t.params) else None for k in sweep.tuned})
        generations = int(t.tags.get("generation", 0))
        if generations:
            row["generations"] = generations
        row["run_id"] = t.run_id
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # A diverged trial never ranks above one that did not, whatever it reached before diverging.
    order = ["diverged", f"best_{sweep.metric}"]
    return table.sort_values(order, ascending=[True, sweep.objective.ascending], na_position="last").reset_index(
        drop=True
    )


def diverged(trial: TrialData) -> bool:
    return trial.tags.get("diverged") == "true" or trial.tags.get("stopped_early") == "diverged"


def _typed(value: str | None) -> Any:
    """MLflow params are strings; numbers go back to numbers for sorting, plotting and the forest."""
    if value is None or value == "None":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def prepare() -> None:
    """Import what writing a report needs (matplotlib, scikit-learn: ~2 s here), so a sweep can do it while its
    trials train instead of after the last one."""
    _pyplot()
    import sklearn.ensemble  # noqa: F401


# -- plots -----------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers, CI or Ray's driver
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(sweep: SweepData, table: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    best_trial = table["trial"].iloc[0] if not table.empty else None
    cmap = plt.get_cmap("tab20")
    for i, t in enumerate(sweep.trials):
        finite = [(s, v) for s, v in t.history if math.isfinite(v)]  # a diverged epoch is marked, not plotted
        if not finite:
            continue
        steps, values = zip(*finite, strict=True)
        is_best = t.trial_id == best_trial
        ax.plot(steps, values, lw=3 if is_best else 1.2, color="crimson" if is_best else cmap(i % 20),
                alpha=1 if is_best else 0.75, label=f"{t.trial_id} (best)" if is_best else None,
                zorder=3 if is_best else 2, marker="." if len(steps) < 30 else None)  # fmt: skip
        if diverged(t):
            ax.plot(steps[-1], values[-1], "v", color="darkorange", ms=8, zorder=4)
        elif t.tags.get("stopped_early"):
            ax.plot(steps[-1], values[-1], "x", color="black", ms=7, zorder=4)
    for k, rung in enumerate(sweep.rungs):
        ax.axvline(rung, ls=":", color="grey", lw=1)
        ax.text(rung, 1.0, f" rung {k + 1}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8)
    ax.plot([], [], "x", color="black", label="stopped early")
    if any(diverged(t) for t in sweep.trials):
        ax.plot([], [], "v", color="darkorange", label="diverged (last finite value)")
    if sweep.rungs:
        ax.plot([], [], ls=":", color="grey", label="ASHA rungs (epochs)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel(sweep.metric)
    ax.set_title(f"{sweep.name}: {sweep.metric} per epoch, {len(sweep.trials)} trials ({sweep.scheduler})", pad=16)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _axis_values(sweep: SweepData, table: pd.DataFrame, key: str) -> tuple[pd.Series, list[tuple[float, str]]]:
    """A column scaled to [0, 1] and the ticks to label it with (categories, or the ends of a numeric range)."""
    column = table[key]
    kind = sweep.param_type(key)
    numeric = pd.to_numeric(column, errors="coerce")
    if kind in ("choice", "grid") or (numeric.isna().all() and column.notna().any()):
        categories = list(dict.fromkeys(column.dropna().tolist()))
        codes = column.map({c: i for i, c in enumerate(categories)})
        span = max(1, len(categories) - 1)
        return codes / span, [(i / span, str(c)) for i, c in enumerate(categories)]
    raw = numeric.map(math.log10) if kind in LOG_TYPES else numeric
    lo, hi = raw.min(), raw.max()
    span = (hi - lo) or 1.0
    lo_label, hi_label = numeric.min(), numeric.max()
    return (raw - lo) / span, [(0.0, f"{lo_label:.3g}"), (1.0, f"{hi_label:.3g}")]


def plot_parallel_coordinates(sweep: SweepData, table: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    objective = f"best_{sweep.metric}"
    axes = [k for k in sweep.tuned if k in table and table[k].notna().any()] + [objective]
    # A diverged trial's line stops before the objective axis, dashed grey: its value does not set the scale.
    table = table.assign(**{objective: table[objective].where(~table["diverged"])})
    fig, ax = plt.subplots(figsize=(max(7.0, 1.15 * len(axes)), 4.5))
    scaled, ticks = {}, {}
    for key in axes:
        scaled[key], ticks[key] = _axis_values(sweep, table, key)
    scores = table[objective]
    norm = plt.Normalize(scores.min(), scores.max())
    cmap = plt.get_cmap("viridis" if sweep.mode == "max" else "viridis_r")
    order = scores.sort_values(ascending=sweep.mode == "max", na_position="first").index  # best drawn last
    for row in order:
        ys = [scaled[k].loc[row] for k in axes]
        if table.loc[row, "diverged"]:
            ax.plot(range(len(axes)), ys, color="grey", ls="--", lw=1, alpha=0.7, zorder=1)
            continue
        best = row == table.index[0]
        ax.plot(range(len(axes)), ys, color="crimson" if best else cmap(norm(scores.loc[row])),
                lw=3 if best else 1.3, alpha=0.9, zorder=3 if best else 2)  # fmt: skip
    for i, key in enumerate(axes):
        ax.axvline(i, color="black", lw=0.8)
        for y, label in ticks[key]:
            ax.text(i + 0.03, y, label, fontsize=7, va="center")
    ax.set_xticks(range(len(axes)), [a.replace("best_", "best ") for a in axes], rotation=20, ha="right")
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(axes) - 0.5)
    ax.set_title(f"{sweep.name}: config vs {objective} (best in red)", fontsize=10)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=objective)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def importance(sweep: SweepData, table: pd.DataFrame) -> pd.Series | None:
    """Random-forest impurity importance of each tuned parameter (one-hot columns summed back), or None."""
    from sklearn.ensemble import RandomForestRegressor

    objective = f"best_{sweep.metric}"
    usable = table[table[objective].notna() & ~table["diverged"]]
    keys = [k for k in sweep.tuned if k in usable and usable[k].nunique(dropna=True) > 1]
    if len(usable) < MIN_TRIALS_FOR_IMPORTANCE or not keys:
        return None
    columns, owners = [], []
    for key in keys:
        kind = sweep.param_type(key)
        if kind in ("choice", "grid") or not pd.api.types.is_numeric_dtype(usable[key]):
            dummies = pd.get_dummies(usable[key].astype(str), prefix=key, dtype=float)
            columns.append(dummies)
            owners += [key] * dummies.shape[1]
        else:
            values = pd.to_numeric(usable[key], errors="coerce")  # conditional params: NaN where inactive
            columns.append((values.map(math.log10) if kind in LOG_TYPES else values).rename(key).to_frame())
            owners.append(key)
    x = pd.concat(columns, axis=1)
    forest = RandomForestRegressor(n_estimators=300, random_state=0, min_samples_leaf=2)
    forest.fit(x.to_numpy(), usable[objective].to_numpy())
    return pd.Series(forest.feature_importances_, index=owners).groupby(level=0).sum().sort_values()


def plot_importance(sweep: SweepData, scores: pd.Series, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(scores) + 1.6))
    ax.barh(scores.index, scores.to_numpy(), color="steelblue")
    ax.set_xlabel("importance (random-forest impurity decrease, sums to 1)")
    ax.set_title(f"{sweep.name}\nwhat moved best {sweep.metric} ({len(sweep.trials)} trials)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the report --------------------------------------------------------------------------------------------------
def write_report(sweep: SweepData, out: Path, top_k: int = 10) -> list[Path]:
    """results.csv, the plots and report.html (images inlined) in `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    table = results_table(sweep)
    table.to_csv(out / RESULTS_CSV, index=False)
    written = [out / RESULTS_CSV]
    if not table.empty:
        if sweep.per_epoch:  # a curve of one point per trial says nothing
            plot_learning_curves(sweep, table, out / PLOTS[0])
            written.append(out / PLOTS[0])
        plot_parallel_coordinates(sweep, table, out / PLOTS[1])
        written.append(out / PLOTS[1])
        scores = importance(sweep, table)
        if scores is not None:
            plot_importance(sweep, scores, out / PLOTS[2])
            written.append(out / PLOTS[2])
    (out / HTML_PAGE).write_text(render_html(sweep, table, [p for p in written if p.suffix == ".png"], top_k))
    return [*written, out / HTML_PAGE]


def top_trials(sweep: SweepData, table: pd.DataFrame, k: int) -> pd.DataFrame:
    shown = ["trial", "status", "stopped_early", "epochs", f"best_{sweep.metric}", "best_epoch"]
    shown = [c for c in shown if c in table]  # an estimator sweep has no epochs
    shown += [c for c in sweep.tuned if c in table]
    return table[shown].head(k) if not table.empty else table


def render_html(sweep: SweepData, table: pd.DataFrame, images: list[Path], top_k: int) -> str:
    def img(path: Path) -> str:
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"></figure>'

    fmt = {"float_format": lambda v: f"{v:.4g}", "index": False, "border": 0, "na_rep": ""}
    best = table.iloc[0] if not table.empty else None
    headline = (
        f"best trial <b>{html.escape(str(best['trial']))}</b>: {sweep.metric} = {best[f'best_{sweep.metric}']:.4f}"
        + (f" at epoch {best['best_epoch']}" if sweep.per_epoch else "")
        if best is not None
        else "no trial reported a result"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(sweep.name)} · raytune-suite report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }}
th, td {{ padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; }} figure {{ margin: 1rem 0; }}
</style></head><body>
<h1>{html.escape(sweep.name)}</h1>
<p>{len(sweep.trials)} trials, scheduler {html.escape(sweep.scheduler)}, objective {sweep.metric} ({sweep.mode}).
{headline}. MLflow experiment {sweep.experiment_id}, parent run <code>{sweep.parent_run_id}</code>.</p>
<h2>Top {min(top_k, len(table))} trials</h2>
{top_trials(sweep, table, top_k).to_html(**fmt)}
<h2>Plots</h2>
{"".join(img(p) for p in images)}
<h2>All trials</h2>
{table.to_html(**fmt)}
</body></html>
"""
