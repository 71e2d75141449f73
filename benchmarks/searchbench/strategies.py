"""The strategies compared: one factory per name, each returning the `Policy` the simulator drives.

The suite's own (`tune.search` + `tune.scheduler`) are built exactly as `raytune-suite run` builds them: an
`ExperimentConfig` with the problem's space, epochs and ASHA settings, then `SEARCHERS[search](cfg, workers)` and
`SCHEDULERS[scheduler](cfg)`, with Ray Tune's `SearchGenerator`, `Experiment` and `Trial` objects around them as
`Tuner.fit()` has them. The peers: Optuna's TPE with its successive-halving pruner (ask/tell, the rungs of the
problem's ASHA settings) and Ray Tune's BOHB (`TuneBOHB` + `HyperBandForBOHB`, when `hpbandster` and `ConfigSpace`
are installed: `pip install -e '.[bench]'`).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks.searchbench.problems import Problem
from benchmarks.searchbench.simulate import CONTINUE, STOP, Policy, SimTrial

NUM_SAMPLES = 1_000_000  # the budget, not a trial count, ends a replayed sweep


def sweep_config(problem: Problem, search: str, scheduler: str, seed: int, num_samples: int = NUM_SAMPLES):
    """The `ExperimentConfig` a user would write for this problem (never loaded as an experiment module)."""
    from raytune_suite.config import ExperimentConfig

    return ExperimentConfig.model_validate(
        {
            "name": problem.name,
            "experiment": f"replay:{problem.name}",
            "train": {"epochs": problem.epochs},
            "space": problem.space,
            "tune": {
                "search": search,
                "scheduler": scheduler,
                "num_samples": num_samples,
                "metric": problem.metric,
                "mode": problem.mode,
                "seed": seed,
                "asha": {"grace_period": problem.grace_period, "reduction_factor": problem.reduction_factor},
            },
        }
    )


def replay_trainable(config: dict[str, Any]) -> None:
    """Stands for the trainable in the `Experiment` the search algorithm reads; the simulator never runs it."""


class SimController:
    """What schedulers and searchers ask of Tune's `TuneController` (`get_trials`, `stop_trial`, `search_alg`)."""

    def __init__(self, search_alg, scheduler):
        self.search_alg, self.scheduler, self.trials = search_alg, scheduler, []

    def get_trials(self) -> list:
        return self.trials

    def stop_trial(self, trial) -> None:
        """As `TuneController.stop_trial` for a paused or pending trial: removed, the searcher told without a result."""
        from ray.tune.experiment import Trial

        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self, trial)
            self.search_alg.on_trial_complete(trial.trial_id)
        trial.set_status(Trial.TERMINATED)


class RayPolicy:
    """A Ray Tune search algorithm and trial scheduler, called as `TuneController` calls them."""

    def __init__(self, problem: Problem, searcher, scheduler, param_space: dict[str, Any], num_samples: int):
        self.problem, self.searcher, self.scheduler, self.param_space = problem, searcher, scheduler, param_space
        self.num_samples = num_samples
        self.search_alg = None  # set up at the first trial, as `tune.run` sets it up (`replay.run_real` does not)
        self.sim: dict[str, SimTrial] = {}

    def _start(self) -> None:
        from ray.tune.experiment import Experiment
        from ray.tune.search import Searcher, SearchGenerator

        problem = self.problem
        search_alg = SearchGenerator(self.searcher) if isinstance(self.searcher, Searcher) else self.searcher
        search_alg.set_search_properties(problem.metric, problem.mode, self.param_space)
        self.scheduler.set_search_properties(problem.metric, problem.mode)
        experiment = Experiment(
            problem.name, run=replay_trainable, config=self.param_space, num_samples=self.num_samples,
            storage_path=tempfile.gettempdir(),
        )  # fmt: skip
        search_alg.add_configurations([experiment])
        self.search_alg = search_alg
        self.controller = SimController(search_alg, self.scheduler)

    def next_trial(self) -> SimTrial | None:
        from ray.tune.experiment import Trial

        if self.search_alg is None:
            self._start()
        trial = self.scheduler.choose_trial_to_run(self.controller)
        if trial is None and not self.search_alg.is_finished():
            new = self.search_alg.next_trial()
            if new is not None:
                self.controller.trials.append(new)
                self.scheduler.on_trial_add(self.controller, new)
                trial = self.scheduler.choose_trial_to_run(self.controller)
        if trial is None:
            return None
        trial.set_status(Trial.RUNNING)
        if trial.trial_id not in self.sim:
            from raytune_suite.config.space import resolve_trial_config

            sections = resolve_trial_config(trial.config)
            curve, seconds = self.problem.curve(sections)
            self.sim[trial.trial_id] = SimTrial(trial, sections, curve, seconds)
        return self.sim[trial.trial_id]

    def on_result(self, trial: SimTrial, result: dict[str, Any]) -> str:
        from ray.tune.experiment import Trial

        result = {**result, "trial_id": trial.handle.trial_id}
        decision = self.scheduler.on_trial_result(self.controller, trial.handle, result)
        if decision == STOP:
            self._complete(trial.handle, {**result, "done": True})
        elif decision == CONTINUE:
            self.search_alg.on_trial_result(trial.handle.trial_id, result)
        else:
            trial.handle.set_status(Trial.PAUSED)
        return decision

    def on_complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        self._complete(trial.handle, {**result, "trial_id": trial.handle.trial_id})

    def _complete(self, handle, result: dict[str, Any]) -> None:
        from ray.tune.experiment import Trial

        self.scheduler.on_trial_complete(self.controller, handle, result)
        self.search_alg.on_trial_complete(handle.trial_id, result=result)
        handle.set_status(Trial.TERMINATED)


def suite(search: str, scheduler: str, **variant) -> Callable[..., RayPolicy]:
    """A strategy of the suite's registries, built as `raytune-suite run` builds it; `variant`: keywords of
    `searchers.hyperopt` (e.g. `rung_ranked=False`: the searcher as it was before `raytune_suite.search.fidelity`)."""

    def build(problem: Problem, seed: int, workers: int, num_samples: int = NUM_SAMPLES) -> RayPolicy:
        from raytune_suite.config.space import build_param_space
        from raytune_suite.search import searchers
        from raytune_suite.search.schedulers import SCHEDULERS

        cfg = sweep_config(problem, search, scheduler, seed, num_samples)
        if search == "hyperopt":
            searcher = searchers.hyperopt(cfg, workers, **variant)
        else:
            searcher = searchers.SEARCHERS[search](cfg, workers)
        space = build_param_space({"data": {}, "model": {}, "train": {}}, cfg.space)
        return RayPolicy(problem, searcher, SCHEDULERS[scheduler](cfg), space, num_samples)

    return build


def bohb(problem: Problem, seed: int, workers: int) -> Policy:
    """Ray Tune's BOHB: `TuneBOHB` proposes, `HyperBandForBOHB` runs synchronous brackets, pausing trials at each
    budget. BOHB's ConfigSpace takes no conditional parameters here, so every parameter is always sampled (a
    conditional one is ignored where inactive, as the table does)."""
    from ray.tune.schedulers import HyperBandForBOHB
    from ray.tune.search.bohb import TuneBOHB

    from raytune_suite.config.space import ParamSpec, build_param_space

    flat = {
        section: {name: ParamSpec.model_validate({**spec, "when": None}) for name, spec in params.items()}
        for section, params in problem.space.items()
    }
    space = build_param_space({"data": {}, "model": {}, "train": {}}, flat)
    scheduler = HyperBandForBOHB(
        time_attr="training_iteration", max_t=problem.epochs, reduction_factor=problem.reduction_factor
    )
    return RayPolicy(problem, TuneBOHB(max_concurrent=workers, seed=seed), scheduler, space, NUM_SAMPLES)


class OptunaPolicy:
    """Optuna's TPE sampler with its successive-halving pruner, by ask and tell: each epoch is `trial.report`ed
    and `should_prune` asked; a finished trial is told its last value, a diverged one FAIL."""

    def __init__(self, problem: Problem, seed: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna, self.problem = optuna, problem
        self.study = optuna.create_study(
            direction="maximize" if problem.mode == "max" else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(
                min_resource=problem.grace_period, reduction_factor=int(problem.reduction_factor)
            ),
        )

    def next_trial(self) -> SimTrial:
        trial = self.study.ask()
        sections = optuna_sections(trial, self.problem.space)
        curve, seconds = self.problem.curve(sections)
        return SimTrial(trial, sections, curve, seconds)

    def on_result(self, trial: SimTrial, result: dict[str, Any]) -> str:
        state = self.optuna.trial.TrialState
        if result.get("diverged"):
            self.study.tell(trial.handle, state=state.FAIL)
            return STOP
        trial.handle.report(result[self.problem.metric], trial.trained)
        if trial.handle.should_prune():
            self.study.tell(trial.handle, state=state.PRUNED)
            return STOP
        return CONTINUE

    def on_complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        if not result.get("diverged"):
            self.study.tell(trial.handle, result[self.problem.metric])


def optuna_sections(trial, space: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """A config of the YAML-DSL space from an Optuna trial, define-by-run: a conditional parameter is suggested
    only where its sibling takes one of its `when` values (parents first)."""
    out: dict[str, dict[str, Any]] = {}
    for section, params in space.items():
        values = out.setdefault(section, {})
        for name, spec in sorted(params.items(), key=lambda kv: bool(kv[1].get("when"))):
            when = spec.get("when")
            if when and values.get(next(iter(when))) not in next(iter(when.values())):
                continue
            label, kind = f"{section}.{name}", spec["type"]
            if kind in ("choice", "grid"):
                values[name] = trial.suggest_categorical(label, spec["values"])
            elif kind == "randint":
                values[name] = trial.suggest_int(label, int(spec["low"]), int(spec["high"]) - 1)
            else:
                values[name] = trial.suggest_float(label, spec["low"], spec["high"], log="log" in kind)
    return out


def optuna_tpe(problem: Problem, seed: int, workers: int) -> Policy:
    return OptunaPolicy(problem, seed)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


STRATEGIES: dict[str, Callable[[Problem, int, int], Policy]] = {
    "random+fifo": suite("random", "fifo"),
    "random+asha": suite("random", "asha"),
    "hyperopt+fifo": suite("hyperopt", "fifo"),
    # the default before the search issue: Ray's HyperOptSearch told each trial's last result, pure TPE
    "hyperopt+asha (before)": suite("hyperopt", "asha", rung_ranked=False, random_fraction=0.0),
    "hyperopt+asha (pure TPE)": suite("hyperopt", "asha", random_fraction=0.0),  # the fidelity fix alone
    "hyperopt+asha": suite("hyperopt", "asha"),  # today's default: the fidelity fix + a third at random
    "optuna-tpe+sh": optuna_tpe,
    "bohb": bohb,
}
# Runnable with --strategies, not in the default run: the fix's other half alone.
EXTRA_STRATEGIES = {"hyperopt+asha (before, 1/3 random)": suite("hyperopt", "asha", rung_ranked=False)}
ALL = {**STRATEGIES, **EXTRA_STRATEGIES}
BASELINE = "random+asha"
DEFAULT = "hyperopt+asha"  # what `raytune-suite run` does unless the config says otherwise
NEEDS = {"optuna-tpe+sh": "optuna", "bohb": "hpbandster"}


def available() -> dict[str, str]:
    """Strategies whose libraries are missing, with the package that brings them."""
    return {name: pkg for name, pkg in NEEDS.items() if not installed(pkg)}


def budget_epochs(problem: Problem, full_trainings: float) -> int:
    return math.ceil(full_trainings * problem.epochs)
