"""The config reference is generated from the typed models and stays true; keys an optimizer or schedule ignores
are warnings; RMSprop trains with PyTorch's defaults unless the config says otherwise."""

import pytest
import torch
from pydantic import BaseModel, Field

from raytune_suite.cli import main
from raytune_suite.config import (
    TrainConfig,
    explain,
    ignored_train_keys,
    ignored_tune_keys,
    load_config,
    optimizer_keys,
    schedule_keys,
)
from raytune_suite.config.space import build_param_space, resolve_trial_config
from raytune_suite.train.optim import OPTIMIZERS, build_optimizer
from raytune_suite.train.schedules import SCHEDULES, schedule_kwargs
from tests.conftest import EXPERIMENTS, REPO, write_yaml

REFERENCE = REPO / "docs" / "config-reference.md"


def test_every_config_field_has_a_description():
    assert explain.missing_descriptions() == []


def test_a_field_without_a_description_is_caught(monkeypatch):
    class Bare(BaseModel):
        documented: int = Field(1, description="has one")
        undocumented: int = 2

    monkeypatch.setattr(explain, "SECTIONS", [*explain.SECTIONS, ("bare", "bare.", Bare)])
    assert explain.missing_descriptions() == ["bare.undocumented"]


def test_docs_config_reference_is_what_the_generator_prints():
    assert REFERENCE.read_text(encoding="utf-8") == explain.reference(), (
        "docs/config-reference.md is stale; regenerate it: raytune-suite validate --explain > docs/config-reference.md"
    )


def test_the_reference_names_every_key_with_type_default_and_allowed_values():
    text = explain.reference()
    for _, prefix, model in explain.SECTIONS:
        for name in model.model_fields:
            assert f"| `{prefix}{name}` |" in text
    assert "| `train.precision` | str | `fp32` | `fp32`, `bf16`, `fp16` |" in text
    assert "| `train.optimizer` | str | `adamw` | `gd`, `sgd`," in text
    assert "| `train.lr` | float | `0.001` | > 0 |" in text
    assert "| `rmsprop` | RMSprop | `rmsprop_alpha`, `momentum` |" in text


def test_validate_explain_prints_the_reference_without_a_config(capsys):
    assert main(["validate", "--explain"]) == 0
    assert capsys.readouterr().out == explain.reference()


def test_validate_without_a_config_or_explain_is_one_line(capsys):
    assert main(["validate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: raytune-suite validate: the following arguments are required: config")
    assert "\n" not in err


# -- which keys each optimizer and schedule reads: the registry entries tell the truth -------------------------
SPECIFIC = sorted({k for keys in optimizer_keys().values() for k in keys})
CHANGED = {"momentum": 0.5, "beta1": 0.5, "beta2": 0.5, "rmsprop_alpha": 0.5}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_reads_exactly_the_keys_it_declares(name):
    model = torch.nn.Linear(3, 2)
    base = build_optimizer(model, TrainConfig(optimizer=name)).defaults
    for key in SPECIFIC:
        changed = build_optimizer(model, TrainConfig(optimizer=name, **{key: CHANGED[key]})).defaults
        assert (changed != base) == (key in OPTIMIZERS[name].reads), (name, key)


SCHEDULE_CANDIDATES = {"decay_rate": 0.3, "step_size": 2.0, "gamma": 0.25, "warmup_epochs": 1.0, "min_lr_ratio": 0.2}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_reads_exactly_the_keys_the_reference_names(name):
    base = schedule_kwargs(name, TrainConfig(schedule=name))
    for key, value in SCHEDULE_CANDIDATES.items():
        changed = schedule_kwargs(name, TrainConfig(schedule=name, **{key: value}))
        assert (changed != base) == (key in schedule_keys()[name]), (name, key)


# -- RMSprop gets PyTorch's defaults ---------------------------------------------------------------------------
def test_rmsprop_keeps_pytorchs_zero_momentum_unless_set():
    model = torch.nn.Linear(3, 2)
    reference = torch.optim.RMSprop(model.parameters()).defaults
    built = build_optimizer(model, TrainConfig(optimizer="rmsprop")).defaults
    assert built["momentum"] == reference["momentum"] == 0
    assert built["alpha"] == reference["alpha"]
    assert build_optimizer(model, TrainConfig(optimizer="rmsprop", momentum=0.5)).defaults["momentum"] == 0.5
    assert build_optimizer(model, TrainConfig(optimizer="nesterov")).defaults["momentum"] == 0.9


def _trial_train(cfg, sampled: dict) -> TrainConfig:
    """The TrainConfig a trial builds: fixed sections + sampled values, as the trainable resolves them."""
    sections = build_param_space(cfg.fixed_sections(), {}, grid=False)
    sections["train"].update(sampled)
    return TrainConfig.model_validate(resolve_trial_config(sections)["train"])


def test_a_trial_with_rmsprop_trains_with_zero_momentum_unless_the_config_sets_it(tmp_path):
    path = write_yaml(tmp_path / "r.yaml", "experiment: diabetes_linear\ntrain: {optimizer: rmsprop}\n")
    model = torch.nn.Linear(3, 2)
    trial = _trial_train(load_config(path), {})
    assert build_optimizer(model, trial).defaults["momentum"] == 0
    trial = _trial_train(load_config(path, ["train.momentum=0.7"]), {})
    assert build_optimizer(model, trial).defaults["momentum"] == 0.7


def test_a_tuned_optimizer_choice_gives_rmsprop_zero_and_nesterov_its_momentum():
    cfg = load_config(EXPERIMENTS / "mnist_cnn.yaml", ["space.train.optimizer.values=[rmsprop, nesterov]"])
    model = torch.nn.Linear(3, 2)
    assert build_optimizer(model, _trial_train(cfg, {"optimizer": "rmsprop"})).defaults["momentum"] == 0
    nesterov = _trial_train(cfg, {"optimizer": "nesterov", "momentum": 0.85})
    assert build_optimizer(model, nesterov).defaults["momentum"] == 0.85
    assert build_optimizer(model, _trial_train(cfg, {"optimizer": "momentum"})).defaults["momentum"] == 0.9


def test_the_fixed_config_keeps_a_set_momentum_and_every_other_key(tmp_path):
    path = write_yaml(tmp_path / "m.yaml", "experiment: diabetes_linear\ntrain: {optimizer: momentum}\n")
    assert "momentum" not in load_config(path).fixed_sections()["train"]
    fixed = load_config(path, ["train.momentum=0.8"]).fixed_sections()["train"]
    assert fixed["momentum"] == 0.8 and set(fixed) == set(TrainConfig.model_fields)


# -- keys no optimizer or schedule reads are warnings ----------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist_cnn", "diabetes_linear", "rt_transformer", "movielens_mf", "rt_logreg"])
def test_shipped_experiments_set_no_ignored_key(name):
    cfg = load_config(EXPERIMENTS / f"{name}.yaml")
    assert ignored_train_keys(cfg) == [] and ignored_tune_keys(cfg) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["tune.search=random", "tune.n_initial_points=5"], ["tune.n_initial_points is ignored by search random"]),
        (["tune.scheduler=fifo", "tune.asha={grace_period: 5}"], ["tune.asha is ignored by scheduler fifo"]),
        (["tune.scheduler=fifo", "tune.asha={grace_period: 1}"], []),  # the defaults: nothing was asked of ASHA
        (["tune.n_initial_points=5", "tune.asha={grace_period: 5}"], []),  # hyperopt and asha read them
    ],
)
def test_a_tune_setting_the_searcher_or_scheduler_never_reads_is_a_warning(tmp_path, overrides, expected):
    path = write_yaml(tmp_path / "w.yaml", "experiment: diabetes_linear\ntrain: {epochs: 20}\n")
    warnings = ignored_tune_keys(load_config(path, overrides))
    assert [w.split(" (read by")[0] for w in warnings] == [f"warning: {line}" for line in expected]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.optimizer=adamw", "train.momentum=0.5"], ["train.momentum is ignored by optimizer adamw"]),
        (["train.optimizer=sgd", "train.beta2=0.9"], ["train.beta2 is ignored by optimizer sgd"]),
        (["train.optimizer=adam", "train.rmsprop_alpha=0.9"], ["train.rmsprop_alpha is ignored by optimizer adam"]),
        (["train.schedule=constant", "train.gamma=0.1"], ["train.gamma is ignored by schedule constant"]),
        (["train.schedule=cosine", "train.warmup_epochs=1"], ["train.warmup_epochs is ignored by schedule cosine"]),
        (["train.optimizer=rmsprop", "train.momentum=0.5", "train.schedule=step", "train.gamma=0.1"], []),
        (["train.optimizer=gd", "train.batch_size=32"], ["train.batch_size is ignored by optimizer gd (full batch)"]),
    ],
)
def test_a_key_the_optimizer_or_schedule_ignores_is_a_warning(tmp_path, overrides, expected):
    path = write_yaml(tmp_path / "w.yaml", "experiment: diabetes_linear\n")
    assert ignored_train_keys(load_config(path, overrides)) == [f"warning: {line}" for line in expected]


def test_a_tuned_key_counts_only_for_the_optimizers_of_its_condition(tmp_path):
    text = (
        "experiment: diabetes_linear\nspace:\n  train:\n    optimizer: {type: choice, values: [adam, nesterov]}\n"
        "    momentum: {type: uniform, low: 0.5, high: 0.9, when: {optimizer: [adam]}}\n"
    )
    cfg = load_config(write_yaml(tmp_path / "t.yaml", text))
    assert ignored_train_keys(cfg) == ["warning: space.train.momentum is ignored by optimizer adam"]
    cfg = load_config(write_yaml(tmp_path / "t.yaml", text.replace("[adam]}", "[nesterov]}")))
    assert ignored_train_keys(cfg) == []


def test_validate_prints_the_warning_on_stderr_and_passes(tmp_path, capsys):
    path = write_yaml(tmp_path / "w.yaml", "experiment: diabetes_linear\ntrain: {optimizer: adamw, momentum: 0.5}\n")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr()
    assert out.err == "warning: train.momentum is ignored by optimizer adamw\n"
    assert out.out.startswith("ok: w")
