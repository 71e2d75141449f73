import pytest
from pydantic import ValidationError

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


def test_a_duplicate_key_at_any_level_is_an_error_naming_key_and_lines(tmp_path):
    top = write_yaml(tmp_path / "top.yaml", "experiment: mnist_cnn\ntrain: {lr: 0.1}\ntrain: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=r"top.yaml: line 3: duplicate key 'train' \(first at line 2\); merge"):
        load_config(top)
    nested = write_yaml(tmp_path / "nested.yaml", "experiment: mnist_cnn\ntune:\n  asha: {grace_period: 1}\n"
                        "  seed: 1\n  asha: {reduction_factor: 2}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"nested.yaml: line 5: duplicate key 'asha'"):
        load_config(nested)


def test_yaml_merge_keys_may_still_override_what_they_merge(tmp_path):
    path = write_yaml(tmp_path / "merge.yaml", "experiment: mnist_cnn\ntrain: {<<: {lr: 0.1, epochs: 2}, lr: 0.2}\n")
    cfg = load_config(path)
    assert cfg.train.lr == pytest.approx(0.2) and cfg.train.epochs == 2


@pytest.mark.parametrize("field", ["lr", "l2", "momentum", "grad_clip_norm"])
def test_the_typed_models_refuse_non_finite_numbers_themselves(field):
    from raytune_suite.config import TrainConfig

    with pytest.raises(ValidationError, match="finite number"):
        TrainConfig(**{field: float("inf")})


def test_a_search_space_bound_cannot_be_infinite():
    from raytune_suite.config.space import ParamSpec

    with pytest.raises(ValidationError, match="finite number"):
        ParamSpec(type="uniform", low=0.0, high=float("inf"))


def test_a_grace_period_longer_than_the_epochs_is_refused_with_the_fix(mnist_yaml):
    with pytest.raises(ConfigError, match=r"^tune.asha.grace_period: 9 is more than train.epochs \(8\).*; set"):
        load_config(mnist_yaml, ["tune.asha.grace_period=9"])
    assert load_config(mnist_yaml, ["tune.asha.grace_period=9", "tune.scheduler=fifo"]).tune.scheduler == "fifo"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"experiment: mnist_cnn\n\x00\x01", "a binary file, not YAML text"),
        ("description: café\n".encode("latin-1"), r"not UTF-8 text \(byte 0xe9 at offset 16\); save it as UTF-8"),
        (b"", "empty; an experiment YAML needs at least `experiment: NAME`"),
        (b"- a\n- b\n", "expected a mapping of sections"),
    ],
)
def test_a_config_file_that_is_no_yaml_mapping_is_one_line(tmp_path, content, expected):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"c.yaml: {expected}"):
        load_config(path)


def test_a_folder_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_config(tmp_path)


def test_a_set_value_that_is_not_yaml_names_the_set(mnist_yaml):
    with pytest.raises(ConfigError, match=r"^--set train.lr: '\[unclosed' is not valid YAML \(.*\); quote it"):
        load_config(mnist_yaml, ["train.lr=[unclosed"])


def test_an_experiment_name_with_its_file_beside_the_yaml_suggests_the_file(tmp_path):
    (tmp_path / "digits_gru.py").write_text("")
    path = write_yaml(tmp_path / "x.yaml", "experiment: digits_gru\n")
    with pytest.raises(ConfigError, match=r"no module 'digits_gru', but .*digits_gru.py sits next to the YAML; write"):
        load_config(path)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\ndef f(:\n", r"my_exp.py:2: SyntaxError: "),
        (
            "x = 1\nimport no_such_package_anywhere\n",
            r"my_exp.py:2: No module named 'no_such_package_anywhere'; install",
        ),
        ("x = 1\ny = 1 / 0\n", r"my_exp.py:2: ZeroDivisionError: division by zero; fix the module there"),
    ],
)
def test_an_experiment_that_fails_to_import_is_one_line_naming_file_and_line(tmp_path, source, expected):
    (tmp_path / "my_exp.py").write_text(source)
    path = write_yaml(tmp_path / "x.yaml", "experiment: my_exp.py\n")
    with pytest.raises(ConfigError, match=rf"^experiment: {tmp_path}/{expected}") as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_a_conditional_space_cannot_be_seeded_for_hyperopt(mnist_yaml):
    with pytest.raises(ConfigError, match=r"conditional parameters \(train.optimizer\) cannot be seeded"):
        load_config(mnist_yaml, ["tune.points_to_evaluate=[{train: {lr: 1.0e-3}}]"])


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        (
            "{train: {momentum: 0.9}}",
            r"\[0\]\.train\.momentum: exists only where train\.optimizer is one of \['nesterov'\]",
        ),
        ("{train: {optimizer: adamw, momentum: 0.9}}", r"\[0\]\.train\.momentum: exists only where train\.optimizer"),
        ("{train: {optimizer: sgd}}", r"\[0\]\.train\.optimizer: 'sgd' is not one of its values"),
    ],
)
def test_a_seed_point_of_a_conditional_space_names_a_branch_the_space_has(mnist_yaml, point, expected):
    """Random and grid search run a seed point in its branch: a conditional parameter needs its parent in the point,
    set to a value where it exists; the parent a value that has a branch. Each refusal is one line."""
    with pytest.raises(ConfigError, match=rf"^tune\.points_to_evaluate{expected}") as err:
        load_config(mnist_yaml, ["tune.search=random", f"tune.points_to_evaluate=[{point}]"])
    assert "\n" not in str(err.value)
    load_config(
        mnist_yaml, ["tune.search=random", "tune.points_to_evaluate=[{train: {optimizer: nesterov, momentum: 0.9}}]"]
    )


def test_the_split_has_its_own_seed_so_another_search_seed_keeps_the_same_data(tmp_path):
    from raytune_suite.run.tuner import param_space

    cfg = load_config(EXPERIMENTS / "diabetes_linear.yaml", ["tune.seed=7"])
    assert (cfg.tune.seed, cfg.tune.split_seed) == (7, 0)
    suite = param_space(cfg)["suite"]
    assert (suite["seed"], suite["split_seed"]) == (7, 0)


def test_a_sweep_saved_before_split_seed_existed_resumes_on_the_split_its_tune_seed_made(tmp_path):
    import yaml

    from raytune_suite.run.sweep_folder import SWEEP_CONFIG, stored_config

    saved = load_config(EXPERIMENTS / "diabetes_linear.yaml", ["tune.seed=5"]).model_dump(mode="json")
    del saved["tune"]["split_seed"]
    (tmp_path / SWEEP_CONFIG).write_text(yaml.safe_dump(saved))
    assert stored_config(str(tmp_path)).tune.split_seed == 5


@pytest.mark.parametrize(
    ("warmup", "refused"),
    [
        ("train.warmup_epochs=7.5", False),
        ("train.warmup_epochs=8", True),
        ("space={train: {warmup_epochs: {type: uniform, low: 0, high: 8}}}", False),  # draws from [0, 8)
        ("space={train: {warmup_epochs: {type: quniform, low: 0, high: 8, q: 1}}}", True),  # can draw 8
        ("space={train: {warmup_epochs: {type: choice, values: [1, 9]}}}", True),
    ],
)
def test_a_warm_up_that_can_last_as_long_as_training_is_refused(mnist_yaml, warmup, refused):
    """Under warmup_cosine the lr would never reach train.lr nor decay (mnist_cnn trains 8 epochs)."""
    if refused:
        with pytest.raises(ConfigError, match=r"warmup_epochs: a warm-up of \d+ epoch\(s\) is not shorter"):
            load_config(mnist_yaml, [warmup])
    else:
        assert load_config(mnist_yaml, [warmup]).train.schedule == "warmup_cosine"


# -- what parsing a config may cost (issue #20: a config file is untrusted input) --------------------------------
def bomb(levels: int, width: int = 10) -> str:
    """`l1` holds `width` values, each next level `width` aliases of the previous: width**levels values in all."""
    lines = [f"  l1: &l1 [{', '.join(['1'] * width)}]"]
    lines += [f"  l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]" for k in range(2, levels + 1)]
    return "experiment: mnist_cnn\nx-defaults:\n" + "\n".join(lines) + f"\ndescription: *l{levels}\n"


def test_aliases_are_counted_expanded_without_expanding_them():
    import yaml

    from raytune_suite.config import ExpansionError, _Loader, check_expansion

    node = _Loader(bomb(3)).get_single_node()
    check_expansion(node, limit=3000)  # 2,353: the anchors (11 + 111 + 1,111), *l3 again (1,111), keys, roots
    with pytest.raises(ExpansionError, match=r"expands to more than 1,000 values") as err:
        check_expansion(node, limit=1000)
    assert err.value.problem_mark.line + 1 == 5  # l3, the first node past the limit
    assert isinstance(err.value, yaml.YAMLError)


def test_an_alias_bomb_is_refused_before_anything_walks_it(tmp_path):
    """Nine levels of ten aliases: a 1 KB file of 10**9 values; every walk over it (finite numbers, pydantic) would
    take hours."""
    path = write_yaml(tmp_path / "bomb.yaml", bomb(9))
    with pytest.raises(ConfigError, match=r"^\S*bomb.yaml: line 7: the value here expands to more than 100,000 values"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^--set description: the value here expands"):
        load_config(EXPERIMENTS / "mnist_cnn.yaml", ["description=[" + ", ".join(
            [f"&l1 [{', '.join(['1'] * 10)}]"] + [f"&l{k} [{', '.join([f'*l{k - 1}'] * 10)}]" for k in range(2, 7)]
        ) + "]"])  # fmt: skip


def test_a_value_that_contains_itself_is_refused(tmp_path):
    path = write_yaml(tmp_path / "loop.yaml", "experiment: mnist_cnn\ndata: &d {inner: *d}\n")
    with pytest.raises(ConfigError, match=r"loop.yaml: line 2: an alias inside its own anchor"):
        load_config(path)


def test_a_file_over_the_size_limit_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    from raytune_suite import config

    path = tmp_path / "big.yaml"
    path.write_text("experiment: mnist_cnn\n" + "junk: 1\n" * 40_000)  # 320 KB
    read = []
    real_open = type(path).open

    def recording_open(self, *args, **kwargs):
        f = real_open(self, *args, **kwargs)
        real_read = f.read
        f.read = lambda n=-1: read.append(n) or real_read(n)
        return f

    monkeypatch.setattr(type(path), "open", recording_open)
    with pytest.raises(ConfigError, match=r"big.yaml: 313 KiB, more than an experiment YAML's limit of 256 KiB"):
        config.read_config_text(path)
    assert read == [config.MAX_CONFIG_BYTES + 1]


def test_deep_nesting_is_one_line_with_libyaml_or_pure_python(tmp_path, monkeypatch):
    import yaml

    from raytune_suite import config

    path = write_yaml(tmp_path / "deep.yaml", "experiment: mnist_cnn\ndescription: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"deep.yaml: "):
        load_config(path)
    pure = type("PureLoader", (yaml.SafeLoader,), {"construct_mapping": config._Loader.construct_mapping})
    monkeypatch.setattr(config, "_Loader", pure)
    with pytest.raises(ConfigError, match=r"deep.yaml: nested too deeply to be a config; flatten it"):
        load_config(path)


@pytest.mark.parametrize("name", sorted(p.name for p in EXPERIMENTS.glob("*.yaml")))
def test_libyaml_reads_every_shipped_config_as_pure_pyyaml_does(name):
    import yaml

    from raytune_suite import config

    text = (EXPERIMENTS / name).read_text()
    pure = type("PureLoader", (yaml.SafeLoader,), {})
    pure.add_implicit_resolver("tag:yaml.org,2002:float", config._FLOAT, list("-+0123456789."))
    assert config.parse_yaml(text) == yaml.load(text, Loader=pure)


def test_validation_checks_without_changing_what_it_was_given_and_resolves_once():
    # validate_config changed the config while checking it (tune.metric, tune.mode, the scheduler, data and model).
    import copy

    from raytune_suite.config import ExperimentConfig, check_estimator_settings, validate_config

    raw = {
        "name": "svc",
        "experiment": "rt_logreg",
        "space": {"model": {"C": {"type": "loguniform", "low": 0.01, "high": 10}}},
    }
    given = copy.deepcopy(raw)
    cfg = validate_config(raw)
    assert raw == given
    assert (cfg.tune.metric, cfg.tune.mode, cfg.tune.scheduler) == ("mean_test_score", "max", "fifo")
    unresolved = ExperimentConfig.model_validate(given)
    before = unresolved.model_dump()
    check_estimator_settings(unresolved)
    assert unresolved.model_dump() == before
