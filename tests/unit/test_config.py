import pytest

from raytune_suite.config import load_config
from raytune_suite.errors import ConfigError
from tests.conftest import EXPERIMENTS, write_yaml


def test_shipped_config_loads_with_experiment_defaults(mnist_yaml):
    cfg = load_config(mnist_yaml)
    assert cfg.name == "mnist_cnn"
    assert cfg.tune.metric == "val_accuracy" and cfg.tune.mode == "max"
    assert cfg.model["channels"] == 32 and cfg.data["dataset"] == "mnist5k"


def test_set_overrides_parse_values_as_yaml(mnist_yaml):
    cfg = load_config(mnist_yaml, ["train.lr=1e-3", "train.epochs=3", "model.batch_norm=false"])
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 3 and cfg.model["batch_norm"] is False


def test_yaml_scientific_notation_is_a_number(tmp_path):
    path = write_yaml(tmp_path / "x.yaml", "experiment: mnist_cnn\ntrain: {lr: 1e-3}\n")
    assert load_config(path).train.lr == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.lrr=1", "train.lrr: unknown key; valid keys: epochs, batch_size"),
        ("model.chanels=3", "model.chanels: unknown key; valid keys: arch, channels"),
        ("tune.serach=random", "tune.serach: unknown key"),
        ("train.optimizer=sgdd", "train.optimizer: unknown optimizer 'sgdd'; choose one of: gd, sgd"),
        ("train.schedule=linear", "train.schedule: unknown schedule 'linear'; choose one of: constant"),
        ("tune.search=bayes", "tune.search: unknown search 'bayes'; choose one of: hyperopt, random, grid"),
        ("train.lr=-1", "train.lr: Input should be greater than 0"),
        ("space.train.lr.low=0.1", "space.train.lr: low (0.1) must be < high (0.01)"),
        ("space.train.lr.type=gaussian", "space.train.lr.type: Input should be"),
        (
            "space.train.beta3={type: choice, values: [1]}",
            "space.train.beta3: train has no parameter 'beta3'",
        ),
        ("space.train.optimizer.values=[adamw, foo]", "space.train.optimizer: unknown optimizer 'foo'"),
        (
            "space.model.channels.values=[1000]",
            "space.model.channels: Input should be less than or equal to 256",
        ),
        ("space.train.momentum.when={lr: [1]}", "space.train.momentum.when: 'lr' must be a choice or grid"),
        (
            "space.train.momentum.when={optimizer: [adam]}",
            "space.train.momentum.when: ['adam'] are not values",
        ),
        ("space.train.epochs={type: choice, values: [1, 2]}", "space.train.epochs: the scheduler decides"),
        ("space.train.batch_size.type=grid", "space.train.batch_size: type grid needs tune.search grid"),
        ("experiment=nope", "experiment: no module 'nope'; available: "),
    ],
)
def test_bad_input_is_one_line_naming_the_field(mnist_yaml, override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(mnist_yaml, [override])
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_grid_search_rejects_continuous_parameters(mnist_yaml):
    with pytest.raises(ConfigError, match=r"^space.train.lr: tune.search grid needs type grid or choice"):
        load_config(mnist_yaml, ["tune.search=grid"])


def test_broken_yaml_names_the_line(tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", "experiment: mnist_cnn\ntrain: {lr: [1, 2}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line 2 is not valid YAML"):
        load_config(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "none.yaml")


def test_bad_set_syntax_shows_the_form(mnist_yaml):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(mnist_yaml, ["train.lr"])


def test_experiment_can_be_a_file_next_to_the_yaml(tmp_path):
    (tmp_path / "my_exp.py").write_text((EXPERIMENTS / "mnist_cnn.py").read_text())
    path = write_yaml(tmp_path / "mine.yaml", "experiment: my_exp.py\n")
    cfg = load_config(path)
    assert cfg.experiment == str(tmp_path / "my_exp.py")


def test_seed_points_must_name_tuned_parameters(mnist_yaml):
    with pytest.raises(ConfigError, match=r"points_to_evaluate\[0\].train.beta1: not in the search space"):
        load_config(mnist_yaml, ["tune.points_to_evaluate=[{train: {beta1: 0.5}}]"])
