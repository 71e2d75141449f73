"""Errors name the user's line (issue #20): the smoke check and a trial's failure point at the experiment's own code
(`file:line in function`), and where the cause is the data, at load_data with the conversion that fixes it.

The bad-input corpus runs each of bad_data.py's mistakes through the CLI; these tests pin the pieces, and the path a
trial takes (trainable.experiment_code -> UserCodeError), which no CLI case reaches.
"""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import pytest
import torch

from raytune_suite.check import frames, smoke
from raytune_suite.config import TrainConfig
from raytune_suite.errors import ConfigError, UserCodeError, data_hint
from raytune_suite.experiments import Datasets, load_experiment
from raytune_suite.train import trainable

BAD_DATA = Path(__file__).resolve().parents[1] / "bad_inputs" / "experiments" / "bad_data.py"


@pytest.fixture
def bad_data():
    return load_experiment(str(BAD_DATA))


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(BAD_DATA.read_text().splitlines(), 1) if text in line)


def load(experiment, mistake: str = "none"):
    return experiment.load_data(experiment.DataConfig(mistake=mistake), 0)


def trial_of(experiment, mistake: str = "none", **model) -> trainable.Trial:
    return trainable.Trial(
        experiment=experiment, train=TrainConfig(batch_size=8), model=experiment.ModelConfig(**model),
        data=experiment.DataConfig(mistake=mistake), seed=0, split_seed=0, metric="val_accuracy", mode="max",
        checkpoint_every=1,
    )  # fmt: skip


def failure_in_a_trial(trial, data) -> UserCodeError:
    """A trial's model built and one epoch trained as train_trial does: the trainable's own `experiment_code` turns
    the failure into a UserCodeError (its frames start in trainable.py, not here)."""
    with pytest.raises(UserCodeError) as err:
        trainable.one_epoch(trainable.build_training(trial, data, "cpu"), 1)
    return err.value


# -- in a trial ------------------------------------------------------------------------------------------------
def test_a_trial_on_numpy_data_names_load_data_and_the_fix(bad_data):
    error = failure_in_a_trial(trial_of(bad_data, "numpy"), load(bad_data, "numpy"))
    assert error.where.startswith(f"{BAD_DATA}:{line_of('def load_data')} in load_data (raised at ")
    assert "load_data returned numpy arrays: return torch tensors in Datasets" in error.message
    assert ".float()" in error.message and ".long()" in error.message


def test_a_trial_on_int32_labels_names_load_data_and_long(bad_data):
    error = failure_in_a_trial(trial_of(bad_data, "int32_labels"), load(bad_data, "int32_labels"))
    assert error.where.startswith(f"{BAD_DATA}:{line_of('def load_data')} in load_data (raised at ")
    assert error.where.endswith("in cross_entropy)")  # the frame that raised, in torch, stays visible
    assert "return train_y.long() and val_y.long() from load_data" in str(error)


def test_a_trial_on_a_tuple_names_datasets(bad_data):
    x, y = load(bad_data, "tuple")
    error = failure_in_a_trial(trial_of(bad_data, "tuple"), (x, y))
    assert error.where.startswith(f"{BAD_DATA}:{line_of('def load_data')} in load_data")
    assert "returns Datasets(train_x, train_y, val_x, val_y, info={...})" in error.message


def test_a_trial_failing_in_the_users_forward_names_that_line(bad_data):
    error = failure_in_a_trial(trial_of(bad_data, forward_bug=True), load(bad_data))
    assert error.where == f"{BAD_DATA}:{line_of('x.view(-1, 3)')} in forward"


def test_a_sequential_failing_inside_torch_points_at_build_model(bad_data):
    error = failure_in_a_trial(trial_of(bad_data, features=5), load(bad_data))
    assert error.where.startswith(f"{BAD_DATA}:{line_of('def build_model')} in build_model (raised at ")
    assert "torch/nn/modules/linear.py" in error.where and error.kind == "RuntimeError"


def test_a_user_code_error_keeps_one_hint_through_pickling():
    error = UserCodeError("TypeError", "linear(): argument 'input' must be Tensor, not numpy.ndarray", "x.py:3 in f")
    again = cloudpickle.loads(cloudpickle.dumps(error))
    assert again.message == error.message and error.message.count("load_data returned numpy arrays") == 1
    assert str(again) == str(error)


def test_the_data_hints_match_what_this_torch_says():
    """torch's own messages, produced here: a torch upgrade that rewords one fails this test, not a user."""
    linear = torch.nn.Linear(4, 2)
    out = linear(torch.rand(3, 4))
    cases = {
        "numpy": lambda: linear(torch.rand(3, 4).numpy()),
        "int64": lambda: torch.nn.functional.cross_entropy(out, torch.zeros(3, dtype=torch.int32)),
        "float()": lambda: linear(torch.rand(3, 4, dtype=torch.float64)),
        "conv float()": lambda: torch.nn.Conv2d(1, 1, 2)(torch.rand(1, 1, 3, 3, dtype=torch.float64)),
        "outside": lambda: torch.nn.functional.cross_entropy(out, torch.full((3,), 5)),
    }
    for expected, fails in cases.items():
        with pytest.raises(Exception) as err:
            fails()
        hint = data_hint(" ".join(str(err.value).split()))
        assert hint and expected.split()[-1] in hint, (expected, str(err.value))


# -- the smoke check's pieces ------------------------------------------------------------------------------------
def test_check_datasets_accepts_what_the_shipped_protocol_asks(bad_data):
    smoke.check_datasets(bad_data, load(bad_data))
    uint8 = load(bad_data)
    uint8.train_y, uint8.val_y = uint8.train_y.to(torch.uint8), uint8.val_y.to(torch.uint8)
    smoke.check_datasets(bad_data, uint8)  # cross-entropy takes Byte class ids too


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        ("numpy", r"its train_x is a numpy.ndarray of float64, not a torch.Tensor; return torch.from_numpy\(train_x\)"
                  r".float\(\) in Datasets"),
        ("tuple", r"returned a tuple of 2, not Datasets; return Datasets\("),
        ("int32_labels", r"its train_y is torch.int32, but classification labels are int64 class ids; return "
                         r"train_y.long\(\)$"),
        ("one_hot_labels", r"its train_y is torch.float32, .*\(class ids, not one-hot rows or probabilities\)"),
        ("negative_labels", r"its train_y holds the label -1"),
        ("fewer_labels", r"train_x holds 30 example\(s\) but train_y 29 label\(s\)"),
    ],
)  # fmt: skip
def test_check_datasets_names_load_data_and_the_conversion(bad_data, mistake, expected):
    with pytest.raises(
        ConfigError, match=rf"^experiment: {BAD_DATA}:{line_of('def load_data')} in load_data: {expected}"
    ):
        smoke.check_datasets(bad_data, load(bad_data, mistake))


def test_numpy_token_ids_convert_to_long_and_features_to_float():
    import numpy as np

    assert smoke.to_tensor("train_x", np.zeros((2, 3), dtype=np.int64), True) == "torch.from_numpy(train_x).long()"
    assert smoke.to_tensor("train_x", np.zeros((2, 3)), False) == "torch.from_numpy(train_x).float()"
    assert smoke.to_tensor("val_y", [0.5, 1.5], False) == "torch.as_tensor(val_y).float()"
    assert smoke.to_tensor("val_y", [0, 1], True) == "torch.as_tensor(val_y).long()"


@pytest.mark.parametrize("width", [1, 3])
def test_a_classifier_outputs_one_logit_per_class_of_the_labels(bad_data, width):
    data = load(bad_data)  # labels 0-1
    smoke.check_outputs(bad_data, data, torch.zeros(8, 2), 8)
    with pytest.raises(ConfigError, match=rf"in build_model: the model outputs {width} logit\(s\) per example but "
                                          r"load_data's labels run 0-1 \(2 classes\)"):  # fmt: skip
        smoke.check_outputs(bad_data, data, torch.zeros(8, width), 8)


def test_a_wider_classifier_passes_when_info_declares_its_classes(bad_data):
    """A split may miss the last class; `info['classes']` says how many there are."""
    data = load(bad_data)
    declared = Datasets(data.train_x, data.train_y, data.val_x, data.val_y, info={"classes": 3})
    smoke.check_outputs(bad_data, declared, torch.zeros(8, 3), 8)
    with pytest.raises(ConfigError, match=r"outputs 4 logit\(s\)"):
        smoke.check_outputs(bad_data, declared, torch.zeros(8, 4), 8)


def test_user_frame_skips_frames_of_python_the_packages_and_the_suite(bad_data):
    assert not frames.is_experiment_code("pandas/_libs/parsers.pyx", None)  # Cython: relative
    assert not frames.is_experiment_code("<frozen runpy>", None)
    assert not frames.is_experiment_code(torch.__file__, None)
    assert not frames.is_experiment_code(smoke.__file__, None)
    assert frames.is_experiment_code(str(BAD_DATA), None)
    assert frames.is_experiment_code(bad_data.module.__file__, bad_data.module.__file__)
