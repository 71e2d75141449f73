"""Every entry of `SEARCHERS` and `SCHEDULERS`, driven the way Ray Tune drives it: adding an entry tests it for free,
as Optuna's `parametrize_sampler` and Syne Tune's scheduler API tests do (issue #19).

No Ray cluster: as `benchmarks/searchbench/simulate.py` does, Ray's own `SearchGenerator` / `BasicVariantGenerator`,
`Experiment`, `Trial` and `TrialScheduler` objects are called through their public methods in the order Tune's
`TuneController` calls them (`tune_controller.py`: a STOP result goes to the scheduler only, then both are told the
trial completed; an errored trial is `on_trial_complete(error=True)`; a pending trial stopped is completed without a
result). Each searcher and scheduler is built by its factory from a real experiment YAML with `--set` overrides.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ray.train import Checkpoint
from ray.train._internal.session import _TrainingResult  # what Tune registers a trial's checkpoint with
from ray.tune.experiment import Experiment, Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher, SearchGenerator
from ray.tune.search.sample import Domain

from raytune_suite.config import ExperimentConfig, load_config
from raytune_suite.config.space import CATEGORICAL, CONTINUOUS, ParamSpec, grid_size, resolve_trial_config
from raytune_suite.errors import ConfigError
from raytune_suite.run.tuner import param_space
from raytune_suite.search.schedulers import SCHEDULERS, asha_rungs, pbt_mutable_params
from raytune_suite.search.searchers import SEARCHERS
from raytune_suite.train.trainable import Trial as TrainableTrial
from raytune_suite.train.trainable import finite_metrics
from tests.conftest import EXPERIMENTS

# loguniform, uniform, randint and choice parameters, a conditional choice (model.channels when arch: cnn) and a
# conditional uniform (train.momentum when optimizer: nesterov); 8 epochs. grace_period 2: ASHA's rungs at 2 and 6.
MNIST = EXPERIMENTS / "mnist_cnn.yaml"
SETTINGS = ("tune.asha.grace_period=2",)
# The same experiment's space in categorical parameters only, conditional ones included, for a searcher that refuses
# sampled types (tune.search: grid enumerates; config.check_space).
CATEGORICAL_SPACE = (
    "space={train: {optimizer: {type: choice, values: [adamw, nesterov]}, "
    "momentum: {type: grid, values: [0.85, 0.95], when: {optimizer: [nesterov]}}, "
    "batch_size: {type: grid, values: [64, 128]}}, "
    "model: {arch: {type: choice, values: [cnn, mlp]}, "
    "channels: {type: choice, values: [16, 32], when: {arch: [cnn]}}}}"
)
MISSING = object()


def searcher_config(search: str, *overrides: str, categorical: str = CATEGORICAL_SPACE) -> ExperimentConfig:
    """mnist_cnn's sweep (HyperOpt's `RungRanked` under ASHA included) searched by `search`: its own mixed space, or
    the `categorical` one where the searcher refuses that (if that is refused too: the first refusal)."""
    settings = [*SETTINGS, f"tune.search={search}", "tune.scheduler=asha", *overrides]
    try:
        return load_config(MNIST, settings)
    except ConfigError as refused:
        try:
            return load_config(MNIST, [*settings, categorical])
        except ConfigError:
            raise refused from None


def scheduler_config(scheduler: str, *overrides: str) -> ExperimentConfig:
    """mnist_cnn's sweep under `scheduler`, searched at random (PBT proposes configs itself: schedulers.check_pbt)."""
    return load_config(MNIST, [*SETTINGS, f"tune.scheduler={scheduler}", "tune.search=random", *overrides])


def never_trained(config: dict) -> None:
    """The trainable of the `Experiment` the search algorithm reads; nothing here runs it."""


def search_algorithm(cfg: ExperimentConfig, tmp_path: Path, max_concurrent: int = 4, *, new: bool = True):
    """`SEARCHERS[cfg.tune.search]` as `tune.run` sets it up: wrapped in a `SearchGenerator` if it is a `Searcher`,
    told the metric, mode and `param_space`, then given the experiment (not when it is about to be restored)."""
    searcher = SEARCHERS[cfg.tune.search](cfg, max_concurrent)
    search = SearchGenerator(searcher) if isinstance(searcher, Searcher) else searcher
    space = param_space(cfg)
    experiment = Experiment(
        cfg.name, run=never_trained, config=space, num_samples=cfg.tune.num_samples, storage_path=str(tmp_path)
    )
    assert search.set_search_properties(cfg.tune.metric, cfg.tune.mode, space, **experiment.public_spec)
    if new:
        search.add_configurations([experiment])
    return search


# ---------------------------------------------------------------------------------------------------------------
# What trials report


def objective(cfg: ExperimentConfig, quality: float, epoch: int) -> float:
    """The metric after `epoch` of a trial of `quality` (higher is better), in the direction of `cfg.tune.mode`."""
    better = quality + 0.01 * epoch
    return better if cfg.tune.mode == "max" else 2.0 - better


def epoch_result(cfg: ExperimentConfig, quality: float, epoch: int) -> dict[str, Any]:
    """What the trainable reports after an epoch (trainable.py): the objective, the epoch as training_iteration."""
    return {
        "training_iteration": epoch,
        "epoch": epoch,
        "time_total_s": float(epoch),
        "train_loss": 0.5,
        cfg.tune.metric: objective(cfg, quality, epoch),
        "done": False,
    }


def diverged_result(cfg: ExperimentConfig, epoch: int) -> dict[str, Any]:
    """A diverged epoch as the trainable reports it: NaN metrics, the objective replaced by its finite stand-in
    and `diverged` set (`trainable.finite_metrics`)."""
    metrics = {**epoch_result(cfg, 0.0, epoch), cfg.tune.metric: math.nan, "train_loss": math.inf}
    numbers = {k: v for k, v in metrics.items() if isinstance(v, float)}
    reported = finite_metrics(numbers, cfg.objective)
    return {**metrics, **reported}


def first_rung(cfg: ExperimentConfig) -> int:
    return int(asha_rungs(cfg.tune.asha.grace_period, cfg.tune.asha.reduction_factor, cfg.train.epochs)[0])


# ---------------------------------------------------------------------------------------------------------------
# Searchers: every way Tune tells a search algorithm how a trial went

ENDINGS = ("finished", "stopped at the first rung", "diverged", "finished", "errored", "removed before it ran")


def quality_of(index: int) -> float:
    return (index * 7 % 10) / 10


def end_trial(search, cfg: ExperimentConfig, trial: Trial, ending: str, quality: float) -> None:
    """Report a trial's results and its end as Tune's TuneController reports them to the search algorithm."""
    tid = trial.trial_id
    if ending == "removed before it ran":  # TuneController.stop_trial of a PENDING trial
        search.on_trial_complete(tid)
        return
    last = {"finished": cfg.train.epochs, "stopped at the first rung": first_rung(cfg)}.get(ending, 2)
    for epoch in range(1, last):  # CONTINUE: the searcher sees every result
        search.on_trial_result(tid, epoch_result(cfg, quality, epoch))
    if ending == "errored":  # TuneController._process_trial_failure, its retries spent
        search.on_trial_complete(tid, error=True)
    elif ending == "diverged":  # the scheduler continued it; the trainable returned after the diverged epoch
        diverged = {**diverged_result(cfg, last), "done": True}
        search.on_trial_result(tid, diverged)
        search.on_trial_complete(tid, result=diverged)
    else:  # ASHA's STOP (a rung, or max_t): the result goes to the scheduler only, then the trial completes with it
        search.on_trial_complete(tid, result={**epoch_result(cfg, quality, last), "done": True})


def run_trials(search, cfg: ExperimentConfig, count: int, start: int = 0) -> list[Trial]:
    """`count` trials one after another, each ended the next of the `ENDINGS` way."""
    trials = []
    for index in range(start, start + count):
        trial = search.next_trial()
        assert trial is not None, f"{cfg.tune.search} proposed no trial {index}"
        end_trial(search, cfg, trial, ENDINGS[index % len(ENDINGS)], quality_of(index))
        trials.append(trial)
    return trials


def inside(spec: ParamSpec, value: Any) -> bool:
    if spec.type in CATEGORICAL:
        return value in spec.values
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    if spec.type == "randint":  # high exclusive
        return float(value).is_integer() and spec.low <= value < spec.high
    if spec.type in CONTINUOUS:  # drawn from [low, high)
        return spec.low <= value < spec.high
    return spec.low <= value <= spec.high  # quantized: rounded to a multiple of q, high included


def assert_complete_and_inside_the_space(cfg: ExperimentConfig, config: dict[str, Any]) -> None:
    """Every tuned parameter has a value inside its range or among its choices; a conditional one is sampled
    exactly where its condition holds (elsewhere the section keeps its fixed value, if any); no unknown key."""
    sections = resolve_trial_config(config)
    fixed = cfg.fixed_sections()
    for section, params in cfg.space.items():
        values = sections[section]
        assert set(values) <= set(fixed[section]) | set(params), f"{section}: unknown keys in {sorted(values)}"
        for name, spec in params.items():
            where = f"{section}.{name}"
            if spec.when:
                ((parent, allowed),) = spec.when.items()
                chosen = values[parent]
                branch = config[section][parent]  # {"_value": chosen, "<name>@<chosen>": value} (space._branches)
                sampled = isinstance(branch, dict) and f"{name}@{chosen}" in branch
                assert sampled == (chosen in allowed), f"{where}: sampled={sampled} where {parent}={chosen!r}"
                if chosen not in allowed:
                    assert values.get(name, MISSING) == fixed[section].get(name, MISSING), where
                    continue
            assert name in values, f"{where}: missing from {values}"
            assert inside(spec, values[name]), f"{where}={values[name]!r} is outside {spec}"


def assert_the_trainable_accepts(config: dict[str, Any]) -> None:
    """The trial's own reading of its config (`trainable.Trial.from_config`) takes it: the typed sections validate."""
    trial = TrainableTrial.from_config(config)
    sections = resolve_trial_config(config)
    assert trial.train.model_dump(include=set(sections["train"])) == sections["train"]


def samples_anything(node: Any) -> bool:
    """Whether a param_space holds a sampled domain (not only `grid_search` lists)."""
    if isinstance(node, Domain):
        return True
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return any(samples_anything(child) for child in children)


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_suggests_complete_configs_inside_the_space(name, tmp_path):
    cfg = searcher_config(name)
    trials = run_trials(search_algorithm(cfg, tmp_path), cfg, 10)  # past HyperOpt's random start-up trials (6)
    for trial in trials:
        assert_complete_and_inside_the_space(cfg, trial.config)
        assert_the_trainable_accepts(trial.config)
        assert trial.config["suite"]["metric"] == cfg.tune.metric
    # both sides of every condition were proposed, so both of its checks above ran
    for section, params in cfg.space.items():
        for spec in params.values():
            if spec.when:
                ((parent, allowed),) = spec.when.items()
                seen = {resolve_trial_config(t.config)[section][parent] for t in trials}
                assert seen & set(allowed) and seen - set(allowed), f"{section}.{parent}: only {seen} in 10 trials"


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_takes_every_way_a_trial_ends_and_keeps_proposing(name, tmp_path):
    """Finished, stopped by ASHA at its first rung, diverged (NaN metrics, the finite stand-in objective), errored,
    and removed before it ran: none raises, and the searcher proposes a valid config after each."""
    cfg = searcher_config(name)
    search = search_algorithm(cfg, tmp_path)
    for index, ending in enumerate(ENDINGS * 2):
        trial = search.next_trial()
        assert trial is not None, f"nothing proposed after a trial {ENDINGS[index - 1]!r}"
        assert_complete_and_inside_the_space(cfg, trial.config)
        end_trial(search, cfg, trial, ending, quality_of(index))
    assert search.next_trial() is not None


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_holds_at_most_max_concurrent_trials_live(name, tmp_path):
    """searchers.py: each searcher itself limits the running trials to the concurrency it is built with."""
    cfg = searcher_config(name)
    search = search_algorithm(cfg, tmp_path, max_concurrent=2)
    first, second = search.next_trial(), search.next_trial()
    assert first is not None and second is not None
    assert search.next_trial() is None, "a third trial while two run"
    end_trial(search, cfg, first, "finished", 0.5)
    assert search.next_trial() is not None, "no trial after one of the two finished"


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_tune_seed_decides_every_searchers_proposals(name, tmp_path):
    """The same tune.seed proposes the same configs; another seed other ones, wherever the space samples anything
    (a grid, enumerated, is the same for every seed)."""

    def proposals(seed: int) -> list[dict]:
        cfg = searcher_config(name, f"tune.seed={seed}")
        return [resolve_trial_config(t.config) for t in run_trials(search_algorithm(cfg, tmp_path), cfg, 8)]

    first = proposals(0)
    assert proposals(0) == first
    assert (proposals(1) != first) == samples_anything(param_space(searcher_config(name)))


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_resumes_from_tunes_experiment_state_where_it_stopped(name, tmp_path):
    """Saved as TuneController.save_to_dir saves it (one trial still running) and restored into a freshly built
    searcher as `Tuner.restore` does (set_search_properties, then restore_from_dir): the running trial completes on
    it, and it proposes exactly what the searcher that was never interrupted proposes."""
    cfg = searcher_config(name)
    search = search_algorithm(cfg, tmp_path)
    run_trials(search, cfg, 7)
    running = search.next_trial()
    assert running is not None
    search.on_trial_result(running.trial_id, epoch_result(cfg, 0.9, 1))
    state = tmp_path / "driver_staging"
    state.mkdir()
    search.save_to_dir(str(state), session_str="2026-01-01_00-00-00")

    restored = search_algorithm(cfg, tmp_path, new=False)
    assert restored.has_checkpoint(str(state)), "nothing saved: a resumed sweep would start the search over"
    restored.restore_from_dir(str(state))

    continued = []
    for alg in (search, restored):
        for epoch in range(2, cfg.train.epochs):
            alg.on_trial_result(running.trial_id, epoch_result(cfg, 0.9, epoch))
        alg.on_trial_complete(running.trial_id, result={**epoch_result(cfg, 0.9, cfg.train.epochs), "done": True})
        continued.append(run_trials(alg, cfg, 5, start=8))
    uninterrupted, resumed = continued
    assert [resolve_trial_config(t.config) for t in resumed] == [resolve_trial_config(t.config) for t in uninterrupted]
    for trial in resumed:
        assert_complete_and_inside_the_space(cfg, trial.config)


SEEDS = "tune.points_to_evaluate=[{train: {optimizer: nesterov, batch_size: 128}}, {train: {batch_size: 64}}]"
# unconditional spaces: HyperOpt takes seed points only there (config.check_seed_points_fit_the_searcher)
SEEDED_SPACE = (
    "space={train: {lr: {type: loguniform, low: 3.0e-4, high: 1.0e-2}, "
    "optimizer: {type: choice, values: [adamw, nesterov]}, batch_size: {type: choice, values: [64, 128]}}}"
)
SEEDED_CATEGORICAL_SPACE = (
    "space={train: {optimizer: {type: choice, values: [adamw, nesterov]}, batch_size: {type: grid, values: [64, 128]}}}"
)


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_proposes_the_seed_points_first_even_across_a_restore(name, tmp_path):
    """tune.points_to_evaluate in order (under grid search a point is crossed with the grid of what it leaves
    open, as Ray's BasicVariantGenerator documents), and the second after a save and restore of the first."""
    cfg = searcher_config(name, SEEDED_SPACE, SEEDS, categorical=SEEDED_CATEGORICAL_SPACE)
    search = search_algorithm(cfg, tmp_path)
    (first,) = run_trials(search, cfg, 1)
    search.save_to_dir(str(tmp_path), session_str="resume")
    restored = search_algorithm(cfg, tmp_path, new=False)
    restored.restore_from_dir(str(tmp_path))
    trials = [first, *run_trials(restored, cfg, 5, start=1)]
    proposed = [(c["optimizer"], c["batch_size"]) for c in (resolve_trial_config(t.config)["train"] for t in trials)]
    assert proposed[0] == ("nesterov", 128)
    after_the_first = next(p for p in proposed if p != ("nesterov", 128))
    assert after_the_first[1] == 64, proposed
    for trial in trials:
        assert_complete_and_inside_the_space(cfg, trial.config)


CONDITIONAL_SEEDS = {
    "the parent of a conditional parameter": "[{train: {optimizer: nesterov}}]",
    "a conditional parameter and its parent": "[{train: {optimizer: nesterov, momentum: 0.95}}]",
}


@pytest.mark.parametrize("point", CONDITIONAL_SEEDS.values(), ids=CONDITIONAL_SEEDS)
@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_refuses_or_honours_a_seed_point_of_a_conditional_space(name, point, tmp_path):
    """Either the config is refused before anything starts, or the seed point is proposed, inside the space."""
    try:
        cfg = searcher_config(name, f"tune.points_to_evaluate={point}")
    except ConfigError as refused:
        assert "points_to_evaluate" in str(refused)
        return
    (trial,) = run_trials(search_algorithm(cfg, tmp_path), cfg, 1)
    (seed,) = cfg.tune.points_to_evaluate
    train = resolve_trial_config(trial.config)["train"]
    assert {name: train[name] for name in seed["train"]} == seed["train"], "the seed point ran with other values"
    assert_complete_and_inside_the_space(cfg, trial.config)


CONDITIONAL_SEED_POINTS = (
    "tune.points_to_evaluate=[{train: {optimizer: nesterov, momentum: 0.95, batch_size: 128}}, "
    "{train: {optimizer: adamw}, model: {arch: cnn}}]"
)


def holds(trial: Trial, point: dict) -> bool:
    sections = resolve_trial_config(trial.config)
    return all(sections[section][k] == v for section, values in point.items() for k, v in values.items())


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_seed_points_of_a_conditional_space_run_as_given_before_the_sweeps_samples_across_a_restore(name, tmp_path):
    """Each point in order, with exactly its values (a named conditional child set in its branch, the others
    sampled there as the space would; under grid search crossed with the grid it leaves open), the second after a
    save and restore into a searcher that was pickled as the Tuner pickles it; then the sweep's other samples,
    as many as Ray counts. (A searcher that refuses such points refuses them before anything starts.)"""
    import pickle

    try:
        cfg = searcher_config(name, "tune.num_samples=4", CONDITIONAL_SEED_POINTS)
    except ConfigError as refused:
        assert "points_to_evaluate" in str(refused)
        return
    fresh = SEARCHERS[name](cfg, 4)
    assert type(pickle.loads(pickle.dumps(fresh))) is type(fresh), "the Tuner could not pickle the searcher"
    search = search_algorithm(cfg, tmp_path)
    (first,) = run_trials(search, cfg, 1)
    search.save_to_dir(str(tmp_path), session_str="resume")
    restored = search_algorithm(cfg, tmp_path, new=False)
    restored.restore_from_dir(str(tmp_path))
    trials = [first]
    while (trial := restored.next_trial()) is not None:
        end_trial(restored, cfg, trial, "finished", 0.5)
        trials.append(trial)
    for trial in trials:
        assert_complete_and_inside_the_space(cfg, trial.config)
    others = (cfg.tune.num_samples - len(cfg.tune.points_to_evaluate)) * grid_size(cfg.space, grid=name == "grid")
    seeded, blocks = trials[: len(trials) - others], []
    for point in cfg.tune.points_to_evaluate:
        blocks.append(len(list(itertools.takewhile(lambda t, p=point: holds(t, p), seeded[sum(blocks) :]))))
    assert sum(blocks) == len(seeded), f"trials {blocks} run as the seed points, of the {len(seeded)} before the rest"
    # one trial each; under grid search crossed with the grid it leaves open (3 and 4 here)
    assert blocks == ([3, 4] if name == "grid" else [1, 1])


# ---------------------------------------------------------------------------------------------------------------
# Schedulers: a sweep of real Trials through the TrialScheduler API, one trial training at a time


class Controller:
    """What schedulers ask of Tune's TuneController (simulate.py's SimController), plus what PBT's exploit step
    calls: the live trials, pausing one, and its checkpoint to clone (the trainable checkpoints every epoch)."""

    def __init__(self, search_alg):
        self.search_alg, self.trials = search_alg, []

    def get_trials(self) -> list[Trial]:
        return list(self.trials)

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self.trials if not t.is_finished()]

    def pause_trial(self, trial: Trial, should_checkpoint: bool = True) -> None:
        trial.set_status(Trial.PAUSED)

    def _schedule_trial_save(self, trial: Trial, result: dict | None = None):
        return trial.checkpoint


@dataclass
class Plan:
    """How a trial trains: its quality (higher is better), and whether it fades (quality 0.05 from an epoch on),
    diverges, fails, or is removed while pending."""

    quality: float
    fades_at: int | None = None
    diverges_at: int | None = None
    fails_at: int | None = None
    removed: bool = False

    def value(self, epoch: int) -> float:
        return 0.05 if self.fades_at and epoch >= self.fades_at else self.quality


@dataclass
class Sweep:
    """What happened: each trial's (epoch, decision) list and every config (as Tune holds it) it trained an epoch
    with."""

    trials: list[Trial]
    decisions: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    trained_with: dict[str, list[dict]] = field(default_factory=dict)

    def last_epoch(self, trial: Trial) -> int:
        """The last epoch the trial reported (0: it never ran)."""
        return self.decisions[trial.trial_id][-1][0] if self.decisions[trial.trial_id] else 0


DECISIONS = {TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP, TrialScheduler.NOOP}
# good, middling, fading after ASHA's first rung, diverging, failing, removed before it runs, clearly bad
PLANS = [
    Plan(0.9),
    Plan(0.6),
    Plan(0.95, fades_at=3),
    Plan(0.7, diverges_at=2),
    Plan(0.8, fails_at=2),
    Plan(0.5, removed=True),
    Plan(0.1),
]


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """Runs a sweep of `plans` under `cfg`'s scheduler. PBT logs each exploit into the Ray session's folder, here a
    temporary one (no Ray is running); Python's `random` (PBT's choice of donor and perturbation) is seeded."""
    monkeypatch.setattr("ray.train._internal.storage._get_ray_train_session_dir", lambda: str(tmp_path / "session"))
    state = random.getstate()
    random.seed(0)
    yield lambda cfg, plans, **kw: run_sweep(cfg, plans, tmp_path, **kw)
    random.setstate(state)


def run_sweep(cfg: ExperimentConfig, plans: list[Plan], tmp_path: Path, edit=None, max_runs: int = 200) -> Sweep:
    scheduler = SCHEDULERS[cfg.tune.scheduler](cfg)
    assert scheduler.set_search_properties(cfg.tune.metric, cfg.tune.mode)  # tune.run refuses a scheduler if False
    population = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"num_samples": len(plans)})})
    search = search_algorithm(population, tmp_path, max_concurrent=0)
    controller = Controller(search)
    while (trial := search.next_trial()) is not None:  # the whole population up front, as PBT's sweeps are
        if edit:
            edit(len(controller.trials), trial)
        Path(trial.local_experiment_path).mkdir(parents=True, exist_ok=True)  # Tune's driver staging folder
        controller.trials.append(trial)
        scheduler.on_trial_add(controller, trial)
    record = Sweep(controller.trials)
    plan = {t.trial_id: p for t, p in zip(controller.trials, plans, strict=True)}
    for trial in controller.trials:
        record.decisions[trial.trial_id], record.trained_with[trial.trial_id] = [], []
        if plan[trial.trial_id].removed:  # TuneController.stop_trial of a PENDING trial
            scheduler.on_trial_remove(controller, trial)
            search.on_trial_complete(trial.trial_id)
            trial.set_status(Trial.TERMINATED)
    for _ in range(max_runs):
        trial = scheduler.choose_trial_to_run(controller)
        if trial is None:
            break
        assert trial.status in (Trial.PENDING, Trial.PAUSED), f"chose a {trial.status} trial"
        trial.set_status(Trial.RUNNING)
        train_until_decided(cfg, scheduler, search, controller, trial, plan[trial.trial_id], record, tmp_path)
    assert all(t.is_finished() for t in controller.trials), "the sweep stalled with trials unfinished"
    return record


def train_until_decided(cfg, scheduler, search, controller, trial, plan, record, tmp_path) -> None:
    """One run of a trial, from its latest checkpoint (after PBT's exploit, the donor's) until the scheduler pauses
    or stops it or the trainable returns, each epoch reported with a checkpoint as the suite's trainable does."""
    tid = trial.trial_id
    latest = trial.latest_checkpoint_result
    epoch = latest.metrics["training_iteration"] if latest else 0

    def complete(result: dict) -> None:  # the trainable returned, or the scheduler stopped it
        scheduler.on_trial_complete(controller, trial, {**result, "done": True})
        search.on_trial_complete(tid, result={**result, "done": True})
        trial.set_status(Trial.TERMINATED)

    if epoch == cfg.train.epochs:  # paused after its last epoch: the trainable restores and returns at once
        complete(trial.last_result)
        return
    while True:
        epoch += 1
        assert epoch <= cfg.train.epochs, f"{tid} trained past train.epochs"
        record.trained_with[tid].append(copy.deepcopy(trial.config))
        if plan.fails_at == epoch:  # TuneController._process_trial_failure, retries spent
            scheduler.on_trial_error(controller, trial)
            search.on_trial_complete(tid, error=True)
            trial.set_status(Trial.ERROR)
            return
        diverged = plan.diverges_at == epoch
        result = diverged_result(cfg, epoch) if diverged else epoch_result(cfg, plan.value(epoch), epoch)
        result["trial_id"] = tid
        folder = tmp_path / "checkpoints" / tid / str(epoch)
        folder.mkdir(parents=True, exist_ok=True)
        trial.on_checkpoint(_TrainingResult(checkpoint=Checkpoint.from_directory(str(folder)), metrics=result))
        decision = scheduler.on_trial_result(controller, trial, result)
        assert decision in DECISIONS, decision
        record.decisions[tid].append((epoch, decision))
        if decision != TrialScheduler.STOP:  # Tune tells the searcher every result its trial is not stopped at
            search.on_trial_result(tid, result)
        trial.update_last_result(result)
        if decision == TrialScheduler.NOOP:  # Tune then does nothing: only right for a trial the scheduler paused
            assert trial.status == Trial.PAUSED, "NOOP for a running trial would leave it waiting for ever"
            return
        if decision == TrialScheduler.PAUSE:
            trial.set_status(Trial.PAUSED)
            return
        if decision == TrialScheduler.STOP or diverged or epoch == cfg.train.epochs:
            complete(result)
            return


@pytest.mark.parametrize("metric", ["val_accuracy", "val_loss"])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_takes_the_sweeps_metric_and_mode(name, metric):
    cfg = scheduler_config(name, f"tune.metric={metric}")
    scheduler = SCHEDULERS[name](cfg)
    assert scheduler.set_search_properties(cfg.tune.metric, cfg.tune.mode), "tune.run would refuse it"
    assert scheduler.metric == cfg.tune.metric
    assert getattr(scheduler, "_mode", cfg.tune.mode) == cfg.tune.mode  # FIFO ranks nothing and keeps no mode


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_runs_a_sweep_of_every_kind_of_trial_to_its_end(name, sweep):
    """Good, bad, fading, diverging, failing and removed trials: every decision is one Ray defines, the scheduler
    only ever picks a pending or paused trial, no trial trains past train.epochs, every trial ends (the sweep never
    stalls), and every config a trial trained with is one the trainable accepts."""
    cfg = scheduler_config(name)
    record = sweep(cfg, PLANS)
    best, _, _, _, failing, removed, _ = record.trials
    assert [t for t in record.trials if t.status == Trial.ERROR] == [failing]
    assert {t.status for t in record.trials if t is not failing} == {Trial.TERMINATED}
    assert record.last_epoch(removed) == 0, "the removed trial ran"
    assert record.last_epoch(best) == cfg.train.epochs, "the best trial did not train to the end"
    for configs in record.trained_with.values():
        for config in configs:
            assert_the_trainable_accepts(config)


@pytest.mark.parametrize("metric", ["val_accuracy", "val_loss"])
def test_asha_stops_a_clearly_worse_trial_at_the_rung_where_it_falls_behind(metric, sweep):
    cfg = scheduler_config("asha", f"tune.metric={metric}")
    rungs = asha_rungs(cfg.tune.asha.grace_period, cfg.tune.asha.reduction_factor, cfg.train.epochs)
    assert [int(r) for r in rungs] == [2, 6]
    record = sweep(cfg, [Plan(0.9), Plan(0.9), Plan(0.9), Plan(0.1), Plan(0.95, fades_at=3)])
    good, (bad_trial, fader_trial) = record.trials[:3], record.trials[3:]
    assert record.decisions[bad_trial.trial_id] == [(1, "CONTINUE"), (2, "STOP")]
    assert record.decisions[fader_trial.trial_id][-1] == (6, "STOP")
    assert {d for _, d in record.decisions[fader_trial.trial_id][:-1]} == {"CONTINUE"}
    assert [record.last_epoch(t) for t in good] == [cfg.train.epochs] * 3


def test_fifo_never_stops_a_trial(sweep):
    cfg = scheduler_config("fifo")
    record = sweep(cfg, PLANS)
    assert {d for log in record.decisions.values() for _, d in log} == {"CONTINUE"}
    for plan, trial in zip(PLANS, record.trials, strict=True):
        if not (plan.diverges_at or plan.fails_at or plan.removed):
            assert record.last_epoch(trial) == cfg.train.epochs


def mutable(cfg: ExperimentConfig) -> list[tuple[str, ParamSpec]]:
    return [(name, cfg.space["train"][name]) for name in pbt_mutable_params(cfg)]


def test_pbt_clones_a_top_trial_and_changes_only_the_mutable_train_parameters(sweep):
    cfg = scheduler_config("pbt")
    assert [name for name, _ in mutable(cfg)] == ["lr", "weight_decay"]  # momentum is conditional: never mutated
    record = sweep(cfg, [Plan(0.9), Plan(0.7), Plan(0.5), Plan(0.1)])
    trained_with = [[resolve_trial_config(c) for c in configs] for configs in record.trained_with.values()]
    originals = [configs[0] for configs in trained_with]

    def fixed_part(config: dict) -> dict:
        return {**config, "train": {k: v for k, v in config["train"].items() if k not in pbt_mutable_params(cfg)}}

    changed = [c for configs in trained_with for c in configs if c not in originals]
    assert changed, "PBT exploited no trial in 8 synchronous generations"
    for config in changed:
        assert fixed_part(config) in [fixed_part(o) for o in originals], "PBT changed a parameter it may not mutate"
    assert [record.last_epoch(t) for t in record.trials] == [cfg.train.epochs] * 4  # PBT stops nobody


def test_pbt_clips_an_explored_value_to_its_range_and_leaves_the_others():
    cfg = scheduler_config("pbt")
    (_, lr), (_, decay) = mutable(cfg)
    config = {"train": {"lr": lr.high * 1.2, "weight_decay": decay.low * 0.8, "batch_size": 64}, "model": {}}
    clipped = SCHEDULERS["pbt"](cfg)._custom_explore_fn(config)
    assert clipped["train"] == {"lr": math.nextafter(lr.high, 0), "weight_decay": decay.low, "batch_size": 64}
    assert inside(lr, clipped["train"]["lr"]) and clipped["model"] == {}


def test_pbt_keeps_every_mutated_value_inside_its_range(sweep):
    cfg = scheduler_config("pbt")

    def top_trial_at_the_edges(index: int, trial: Trial) -> None:
        """The best trial (index 0, the donor of every generation) proposed at the top of lr's range and the bottom
        of weight_decay's: configs a searcher may propose."""
        if index == 0:
            train = dict(trial.config["train"])
            (_, lr), (_, decay) = mutable(cfg)
            train.update(lr=lr.high * 0.999, weight_decay=decay.low * 1.001)
            trial.set_config({**trial.config, "train": train})

    record = sweep(cfg, [Plan(0.9), Plan(0.7), Plan(0.5), Plan(0.1)], edit=top_trial_at_the_edges)
    for configs in record.trained_with.values():
        for config in configs:
            for name, spec in mutable(cfg):
                value = resolve_trial_config(config)["train"][name]
                assert inside(spec, value), f"train.{name}={value:g} outside {spec}"
