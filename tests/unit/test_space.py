from ray.tune.search.sample import Categorical, Float, Integer, LogUniform
from ray.tune.search.variant_generator import generate_variants

from raytune_suite.config import load_config
from raytune_suite.config.space import ParamSpec, build_param_space, grid_size, resolve_trial_config
from raytune_suite.run.tuner import param_space


def spec(**kw) -> ParamSpec:
    return ParamSpec.model_validate(kw)


def test_each_dsl_type_becomes_the_matching_ray_domain():
    space = build_param_space(
        {"train": {}},
        {
            "train": {
                "lr": spec(type="loguniform", low=1e-4, high=1e-1),
                "w": spec(type="quniform", low=16, high=128, q=16),
                "n": spec(type="randint", low=1, high=4),
                "opt": spec(type="choice", values=["a", "b"]),
                "g": spec(type="grid", values=[1, 2]),
            }
        },
    )["train"]
    assert isinstance(space["lr"], Float) and isinstance(space["lr"].get_sampler(), LogUniform)
    assert isinstance(space["w"], Float) and space["w"].get_sampler().q == 16
    assert isinstance(space["n"], Integer) and (space["n"].lower, space["n"].upper) == (1, 4)
    assert isinstance(space["opt"], Categorical) and space["opt"].categories == ["a", "b"]
    assert space["g"] == {"grid_search": [1, 2]}


def test_conditional_parameter_exists_only_in_its_branch():
    space = build_param_space(
        {"train": {"optimizer": "sgd", "momentum": 0.9}},  # fixed momentum follows its parent
        {
            "train": {
                "optimizer": spec(type="choice", values=["sgd", "momentum", "adam"]),
                "momentum": spec(type="uniform", low=0.5, high=0.99, when={"optimizer": ["momentum"]}),
            }
        },
    )
    seen = {}
    for _ in range(40):
        for _, variant in generate_variants(space):
            flat = resolve_trial_config(variant)["train"]
            seen.setdefault(flat["optimizer"], []).append(flat["momentum"])
    assert set(seen) == {"sgd", "momentum", "adam"}
    assert all(0.5 <= m <= 0.99 for m in seen["momentum"])
    assert len(set(seen["momentum"])) > 1  # sampled
    assert set(seen["sgd"]) == {0.9} and set(seen["adam"]) == {0.9}  # the fixed default, untouched


def test_grid_with_conditional_children_counts_branches():
    space = {
        "train": {
            "optimizer": spec(type="grid", values=["sgd", "momentum"]),
            "momentum": spec(type="grid", values=[0.5, 0.9], when={"optimizer": ["momentum"]}),
            "batch_size": spec(type="grid", values=[32, 64]),
        }
    }
    assert grid_size(space) == (1 + 2) * 2
    variants = list(generate_variants(build_param_space({"train": {}}, space)))
    assert len(variants) == 6


def test_trial_config_carries_experiment_and_objective(mnist_yaml):
    cfg = load_config(mnist_yaml)
    space = param_space(cfg)
    assert space["suite"] == {
        "experiment": "mnist_cnn", "seed": 0, "split_seed": 0, "metric": "val_accuracy", "mode": "max",
        "checkpoint_every": 1,
    }  # fmt: skip
    assert space["train"]["epochs"] == cfg.train.epochs == 8  # fixed values stay plain


def test_exhaustive_grid_search_enumerates_every_categorical_combination_exactly_once():
    """tune.search: grid: choices are enumerated, not sampled; a conditional one only inside its branch."""
    space = {
        "train": {
            "optimizer": spec(type="choice", values=["adamw", "nesterov"]),
            "momentum": spec(type="choice", values=[0.8, 0.9], when={"optimizer": ["nesterov"]}),
            "batch_size": spec(type="choice", values=[32, 64, 128]),
        }
    }
    fixed = {"train": {"momentum": 0.0}}
    configs = [
        resolve_trial_config(variant)["train"]
        for _, variant in generate_variants(build_param_space(fixed, space, grid=True))
    ]
    seen = [(c["optimizer"], c["momentum"], c["batch_size"]) for c in configs]
    expected = [(o, m, b) for o, ms in (("adamw", [0.0]), ("nesterov", [0.8, 0.9])) for m in ms for b in (32, 64, 128)]
    assert sorted(seen) == sorted(expected) and len(set(seen)) == len(seen) == 9
    assert grid_size(space, grid=True) == 9
    # random search keeps sampling: one variant per pass
    assert len(list(generate_variants(build_param_space(fixed, space)))) == 1 and grid_size(space) == 1
