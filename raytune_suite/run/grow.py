"""Growing a sweep: `run CONFIG --resume DIR --num-samples N` adds trials to a sweep under its MLflow parent run.

Ray's `Tuner.restore` only finishes what was planned: the number of samples is part of the state it restores. So
a sweep is fitted in *stages*: its first `Tuner`, then one new `Tuner` per growth, on the same experiment folder
(trial folders side by side, so the tracker, `publish` and `report` find them all) and the same MLflow parent run.

This module owns:
- the stage record, `sweep_stages.json` in the sweep folder: per stage the sweep's `tune.num_samples` once it is
  done, the trials the sweep held when a growth began (start order) and which of them failed, and whether the
  stage completed. A stage is recorded before its `Tuner` exists, so an interrupted growth resumes as a growth;
- the check of `--num-samples` against the sweep, before Ray or MLflow start (`check_growth`);
- the searcher of a growth (`growth_searcher`): built by `searchers.SEARCHERS` for the sweep's saved config, then
  - HyperOpt: warm-started by replaying every earlier trial into it (`Replayed`), through the same wrappers
    (`ConcurrencyLimiter`, `fidelity.RungRanked` under ASHA), so it learns from what the sweep's searcher saw;
  - random: re-seeded from (tune.seed, trials so far), so it does not draw the earlier configs again.
  The earlier trials come from Ray's trial folders (`params.json`: the raw config, conditional parameters still in
  their branches, as HyperOpt proposed them; `result.json`: every result Tune reported), through `storage.py`, so
  local and remote (s3://) sweep folders work alike; whether a trial failed comes from its MLflow run.

Why a replay and not `HyperOptSearch(points_to_evaluate=...)`: Ray converts a point's categories to indices by
walking the space as plain dicts, which a conditional branch (a choice of dicts) is not, and it records a nested
point under its section ("train") instead of HyperOpt's labels ("train/lr"), so TPE cannot read it back (it raised
KeyError 'train/lr' once past its start-up trials). Replayed trials are recorded under HyperOpt's own labels.

MLflow never lets a param change, so a growth copies its best config to the parent as `best_of_<N>.*` params (the
first completion's `best.*` stay); the tags `best_trial` / `best_run_id` always name the sweep's best. What a
growth does not carry over: ASHA's rungs. The growth's scheduler starts empty, so its first trials are compared
with each other only (the searcher, not the scheduler, learns from the earlier trials).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from raytune_suite.errors import ConfigError
from raytune_suite.run import storage
from raytune_suite.run.sweep_folder import trial_folder, trial_folder_name
from raytune_suite.run.tuner import total_trials
from raytune_suite.search.hyperopt_record import base_searcher, record_config

if TYPE_CHECKING:
    from collections.abc import Callable

    from raytune_suite.config import ExperimentConfig

STAGES_FILE = "sweep_stages.json"


@dataclass
class StageRecord:
    """One stage of a sweep, as `sweep_stages.json` keeps it.

    Args:
        num_samples: the sweep's `tune.num_samples` once this stage is done.
        earlier: the trials the sweep held when this stage (a growth) began, in start order.
        failed: those of them that failed (the searcher is told so, as Tune told it).
        complete: every trial of the stage ended.
    """

    num_samples: int
    earlier: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    complete: bool = False


def load_stages(cfg: ExperimentConfig, sweep_dir: str) -> list[StageRecord]:
    """The sweep's stages; a sweep without the record (or never completed) is its first stage, not known complete."""
    path = storage.join(sweep_dir, STAGES_FILE)
    if not storage.exists(path):
        return [StageRecord(cfg.tune.num_samples)]
    return [StageRecord(**stage) for stage in json.loads(storage.read_text(path))["stages"]]


def save_stages(sweep_dir: str, stages: list[StageRecord]) -> None:
    storage.write_text(storage.join(sweep_dir, STAGES_FILE), json.dumps({"stages": [asdict(s) for s in stages]}))


def with_tune(cfg: ExperimentConfig, **fields: Any) -> ExperimentConfig:
    """`cfg` with other values of the `tune` fields given."""
    return cfg.model_copy(update={"tune": cfg.tune.model_copy(update=fields)})


def check_growth(cfg: ExperimentConfig, sweep_dir: str, num_samples: int) -> None:
    """`--resume DIR --num-samples N` must add trials: N above the sweep's `tune.num_samples`, or equal to it to
    continue an interrupted growth to N. `cfg` is the sweep's saved config."""
    field_ = f"--num-samples {num_samples}"
    if cfg.tune.search == "grid":
        raise ConfigError(f"{field_}: a grid sweep has run every point of its grid; start a new sweep to repeat it")
    latest = load_stages(cfg, sweep_dir)[-1]
    unfinished_growth = latest.earlier and not latest.complete
    if num_samples > latest.num_samples or (num_samples == latest.num_samples and unfinished_growth):
        return
    trials = total_trials(with_tune(cfg, num_samples=latest.num_samples))
    raise ConfigError(
        f"{field_}: the sweep already has {trials} trials (tune.num_samples {latest.num_samples}); pass a larger "
        "--num-samples to add trials, or leave it out to resume the sweep"
    )


@dataclass(frozen=True)
class Stage:
    """One Tune fit of a sweep: its first, or a growth.

    Args:
        cfg: the sweep's config with `tune.num_samples` of this fit only.
        record: the stage as recorded; `index` its place in the record.
        searcher: builds its search algorithm (`tuner.build_tuner`'s `searcher`); None: the config's own.
    """

    cfg: ExperimentConfig
    record: StageRecord
    index: int = 0
    searcher: Callable[[ExperimentConfig, int], Searcher] | None = None

    @property
    def trials(self) -> int:
        """Trials this fit runs."""
        return total_trials(self.cfg)

    @property
    def earlier(self) -> set[str]:
        return set(self.record.earlier)

    def began(self, results) -> bool:
        """Whether Ray's restored state is this stage's. A driver stopped after the growth was recorded but before
        its Tuner saved a state of its own leaves the stage before's, which `Tuner.restore` then finishes again."""
        if not self.record.earlier:
            return True
        earlier = {trial_folder_name(t) for t in self.record.earlier}
        return any(Path(result.path).name not in earlier for result in results)

    @property
    def best_params(self) -> str:
        """The prefix of the parent run's params that hold the best config once this stage completed: a growth's
        own (`best_of_12.train.lr`), as MLflow never lets the first completion's `best.*` change."""
        return f"best_of_{self.record.num_samples}" if self.index else "best"

    def counts(self, results) -> tuple[int, int]:
        """(trials, failed trials) of the whole sweep once this fit returned `results`."""
        return len(self.record.earlier) + len(results), len(self.record.failed) + len(results.errors)


def first_stage(cfg: ExperimentConfig) -> Stage:
    return Stage(cfg, StageRecord(cfg.tune.num_samples))


def latest_stage(cfg: ExperimentConfig, sweep_dir: str) -> Stage:
    """The stage a `--resume` continues; `cfg` is the sweep's saved config."""
    stages = load_stages(cfg, sweep_dir)
    return stage_of(cfg, sweep_dir, stages, len(stages) - 1)


def stage_of(cfg: ExperimentConfig, sweep_dir: str, stages: list[StageRecord], index: int) -> Stage:
    record = stages[index]
    if index == 0:
        return Stage(cfg, record)
    added = record.num_samples - stages[index - 1].num_samples
    return Stage(with_tune(cfg, num_samples=added), record, index, growth_searcher(cfg, sweep_dir, record))


def mark_complete(sweep_dir: str, stage: Stage) -> None:
    """Record that every trial of `stage` ended: a later growth then starts at once (no `Tuner.restore`, which would
    also retry the sweep's failed trials)."""
    stages = load_stages(stage.cfg, sweep_dir)[: stage.index]
    save_stages(sweep_dir, [*stages, replace(stage.record, complete=True)])


def begin(cfg: ExperimentConfig, sweep_dir: str, tracker, num_samples: int) -> Stage:
    """Record a growth of the (complete) sweep to `num_samples` and return its stage; says once what it adds."""
    stages = load_stages(cfg, sweep_dir)
    before = stages[-1].num_samples
    earlier = list(tracker.records)  # start order: the run map's, then this session's
    record = StageRecord(num_samples, earlier, failed_trials(tracker))
    save_stages(sweep_dir, [*stages, record])
    tracker.client.set_tag(tracker.parent_run_id, "grown_to_num_samples", str(num_samples))
    stage = stage_of(cfg, sweep_dir, [*stages, record], len(stages))
    learns = "HyperOpt learns from all of them" if cfg.tune.search == "hyperopt" else "random search re-seeded"
    print(f"growing the sweep: it has {len(earlier)} trials (tune.num_samples {before}), adding {stage.trials} "
          f"(tune.num_samples {num_samples}); {learns}", flush=True)  # fmt: skip
    return stage


def failed_trials(tracker) -> list[str]:
    """The trials whose MLflow run ended FAILED: what Tune told the searcher with `error=True`."""
    from raytune_suite.track.store import child_runs

    runs = child_runs(tracker.client, tracker.experiment_id, tracker.parent_run_id)
    failed = {run.info.run_id for run in runs if run.info.status == "FAILED"}
    return [trial for trial, record in tracker.records.items() if record.run_id in failed]


# -- the growth's searcher -------------------------------------------------------------------------------------
def growth_searcher(cfg: ExperimentConfig, sweep_dir: str, record: StageRecord):
    """The factory `build_tuner` calls (with the stage's config, ignored here, and its concurrency). The searcher is
    built from the saved config, so that HyperOpt's start-up count is the sweep's, without its seed points: they
    were the sweep's first trials and are replayed with the others."""
    from raytune_suite.search.searchers import SEARCHERS

    saved = with_tune(cfg, points_to_evaluate=[])
    if cfg.tune.search == "hyperopt":
        return lambda _stage_cfg, concurrent: Replayed(
            SEARCHERS["hyperopt"](saved, concurrent), sweep_dir, record.earlier, record.failed
        )
    reseeded = with_tune(saved, seed=growth_seed(cfg.tune.seed, len(record.earlier)))
    return lambda _stage_cfg, concurrent: SEARCHERS[cfg.tune.search](reseeded, concurrent)


def growth_seed(seed: int, trials_so_far: int) -> int:
    """A seed of its own for a growth's random search: the sweep's seed alone would draw its first configs again,
    and seed + trials could be another sweep's seed; NumPy's SeedSequence mixes both into a stream of its own."""
    import numpy as np

    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


@dataclass
class EarlierTrial:
    """What Tune told the sweep's searcher about one trial.

    Args:
        trial_id: Ray's trial id.
        config: the trial's raw config (`params.json`): conditional parameters inside their branches.
        results: every result Tune reported for it (`result.json`), in order.
        failed: Tune ended it with `error=True`.
    """

    trial_id: str
    config: dict[str, Any]
    results: list[dict[str, Any]]
    failed: bool


def read_trial(sweep_dir: str, trial_id: str, failed: bool) -> EarlierTrial | None:
    """The trial's record in its Ray folder; None if the folder holds no `params.json`."""
    folder = trial_folder(sweep_dir, trial_id)
    params, results = storage.join(folder, "params.json"), storage.join(folder, "result.json")
    if not storage.exists(params):
        return None
    lines = storage.read_text(results).splitlines() if storage.exists(results) else []
    return EarlierTrial(trial_id, json.loads(storage.read_text(params)), parse_results(lines), failed)


def parse_results(lines: list[str]) -> list[dict[str, Any]]:
    results = []
    for line in lines:
        try:
            results.append(json.loads(line))
        except ValueError:  # a line cut short when a driver died
            continue
    return results


class Replayed(Searcher):
    """A grown sweep's HyperOpt searcher, told every earlier trial before it proposes a new one.

    Tune hands a searcher its search space in `set_search_properties`; only then can HyperOpt take observations,
    so the replay happens there. It is a wrapper, not a replay done before `fit`, because a searcher that already
    holds a space makes Tune refuse the `param_space` the sweep passes. When Tune restores an interrupted growth it
    replays again, then overwrites the result with the growth's own saved state (`restore_from_dir`): no harm done.

    Args:
        searcher: the searcher `searchers.SEARCHERS` built (wrappers included).
        sweep_dir: the sweep folder holding the earlier trials' Ray folders.
        earlier / failed: trial ids, in start order / those that failed.
    """

    def __init__(self, searcher: Searcher, sweep_dir: str, earlier: list[str], failed: list[str]):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher  # the name Tune's SearchGenerator follows to save and restore wrapped searchers
        self.sweep_dir, self.earlier, self.failed = sweep_dir, list(earlier), set(failed)
        self.replayed = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if not self.searcher.set_search_properties(metric, mode, config, **spec):
            return False
        self._metric, self._mode = metric or self._metric, mode or self._mode
        trials = [read_trial(self.sweep_dir, t, t in self.failed) for t in self.earlier]
        missing = [t for t, trial in zip(self.earlier, trials, strict=True) if trial is None]
        if missing:
            print(f"warning: {len(missing)} earlier trial(s) have no params.json in {self.sweep_dir} (first: "
                  f"{missing[0]}); the searcher is not told about them", flush=True)  # fmt: skip
        self.replayed = replay(self.searcher, config, [t for t in trials if t is not None])
        return True

    def suggest(self, trial_id: str) -> dict | None:
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict:
        return {}  # everything it learned lives in the wrapped searcher, which Tune saves itself

    def set_state(self, state: dict) -> None:
        pass


def replay(searcher: Searcher, space: dict, trials: list[EarlierTrial]) -> int:
    """Tell `searcher` each trial as Tune told the sweep's searcher: `suggest`, every result, `on_trial_complete`.

    At each `suggest` HyperOpt proposes a config of its own; in HyperOpt's record of that trial (its `Trials`
    document, read and written back with the public `get_state` / `set_state`) the proposal is replaced by the
    config the trial really ran, so TPE models the configs that produced the results. Returns the trials told.
    """
    hyperopt = base_searcher(searcher)
    for trial in trials:
        known = {doc["tid"] for doc in hyperopt.get_state()["hyperopt_trials"].trials}
        if searcher.suggest(trial.trial_id) is None:
            raise RuntimeError(f"replaying trial {trial.trial_id}: the searcher proposed nothing")
        record_config(hyperopt, known, space, trial.config)
        for result in trial.results:
            searcher.on_trial_result(trial.trial_id, result)
        last = trial.results[-1] if trial.results and not trial.failed else None
        searcher.on_trial_complete(trial.trial_id, result=last, error=trial.failed)
    return len(trials)
