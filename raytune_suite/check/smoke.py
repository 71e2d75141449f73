"""The smoke check: the experiment's own code runs before any cluster time is spent.

An estimator experiment (build_estimator) is fitted and scored instead, on a slice of its first fold
(`estimator_smoke_check`).

Loads the experiment's data, builds its model for the config's defaults and for the far corner of the search
space (every tuned parameter at its last value: the high end of a range, the last choice), and runs one forward
and backward pass on a few training examples, then evaluates a few validation ones, on CPU in this process. An
error there would fail every trial the same way after Ray and MLflow started, so it is a one-line `ConfigError`
naming the experiment file, function and line: the innermost frame of the experiment's own code, not torch's.

What `load_data` returns is checked before any model sees it (`check_datasets`: `Datasets` of tensors, one label
per example, int64 class ids), and a classifier's output width against the labels (`check_outputs`): where the
cause is the data, the line names `load_data` and the conversion that fixes it (`.float()`, `.long()`,
`Datasets(...)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raytune_suite.check.frames import defined_at, user_frame
from raytune_suite.config import ExperimentConfig
from raytune_suite.errors import ConfigError, data_hint, one_line

EXAMPLES = 8  # enough for a batch-norm layer, few enough to cost milliseconds


def torch_smoke_check(cfg: ExperimentConfig) -> None:
    """A torch experiment (build_model): see the module docstring."""
    from raytune_suite.experiments import load_experiment

    experiment = load_experiment(cfg.experiment)
    with user_code(experiment, "load_data"):
        data = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    check_datasets(experiment, data)
    for sections in (cfg.fixed_sections(), far_corner(cfg)):
        forward_and_backward(experiment, data, sections)


def far_corner(cfg: ExperimentConfig, position: int = -1) -> dict[str, dict[str, Any]]:
    """The defaults with every tuned parameter at its last candidate value (`position` 0: its first); a conditional
    one only where its condition then holds (no Ray import: this check must stay quick)."""
    sections = {name: dict(values) for name, values in cfg.fixed_sections().items()}
    for section, params in cfg.space.items():
        ordered = sorted(params.items(), key=lambda item: bool(item[1].when))  # conditions read their parents
        for name, spec in ordered:
            values = sections[section]
            if all(values.get(parent) in allowed for parent, allowed in (spec.when or {}).items()):
                values[name] = spec.candidates()[position]
    return sections


def estimator_smoke_check(cfg: ExperimentConfig) -> None:
    """An estimator experiment: its data loads as (X, y), `cv.folds` splits it, and its estimator fits and is
    scored by `cv.scoring` on a few examples, for the defaults and both corners of the space (the first and the
    last candidates: a solver that cannot take a penalty fails here, not in every trial)."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.utils import resample

    from raytune_suite.experiments import load_experiment
    from raytune_suite.train.estimators import cv_splitter

    experiment = load_experiment(cfg.experiment)
    with user_code(experiment, "load_data"):
        data = experiment.load_data(experiment.DataConfig.model_validate(cfg.data), cfg.tune.split_seed)
    if not (isinstance(data, tuple | list) and len(data) == 2 and examples(data[0]) == examples(data[1]) > 0):
        got = describe(data)
        if isinstance(data, tuple | list) and len(data) == 2:
            got = f"X of {examples(data[0])} and y of {examples(data[1])} example(s)"
        raise ConfigError(
            f"experiment: {defined_at(experiment, 'load_data')}: returned {got}; an estimator experiment's load_data "
            "returns (X, y) with one label per example and at least one example; see docs/writing-an-experiment.md"
        )
    x, y = data
    few = None
    for sections in (cfg.fixed_sections(), far_corner(cfg, 0), far_corner(cfg)):
        with user_code(experiment, "build_estimator"):
            estimator = experiment.build_estimator(experiment.ModelConfig.model_validate(sections["model"]))
        if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
            raise ConfigError(
                f"experiment: {experiment.ref} build_estimator returned {type(estimator).__name__}, not a "
                f"scikit-learn estimator, for model {sections['model']}; return the estimator"
            )
        if few is None:  # the folds are the same for every config
            with user_code(experiment, "load_data's (X, y) for cross-validation", function="load_data"):
                splitter = cv_splitter(cfg.cv, estimator, y, cfg.tune.split_seed)
            try:
                next(splitter.split(x, y))
            except ValueError as err:
                raise ConfigError(f"cv.folds: {' '.join(str(err).split())}; lower cv.folds") from None
            stratify = y if isinstance(splitter, StratifiedKFold) else None  # every class among the few
            n = min(examples(y), ESTIMATOR_EXAMPLES)
            with user_code(experiment, "load_data's (X, y)", function="load_data"):
                few = resample(x, y, replace=False, n_samples=n, stratify=stratify, random_state=cfg.tune.split_seed)
        with user_code(experiment, f"the estimator's fit (model {sections['model']})", function="build_estimator"):
            estimator.fit(*few)
        scoring_check(cfg, estimator, *few)


ESTIMATOR_EXAMPLES = 200  # every class, and a fit of milliseconds


def scoring_check(cfg: ExperimentConfig, estimator, x, y) -> None:
    """`cv.scoring` can score this estimator (roc_auc needs predict_proba or decision_function, ...)."""
    from sklearn.metrics import get_scorer

    try:
        get_scorer(cfg.cv.scoring)(estimator, x, y)
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(
            f"cv.scoring: {cfg.cv.scoring} cannot score {type(estimator).__name__}: {type(exc).__name__}: {message}; "
            "choose another scorer"
        ) from None


def examples(value: Any) -> int:
    """Rows of an array, a sparse matrix (whose len() raises) or a list."""
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape else len(value)


def describe(value: Any) -> str:
    """What a value is, for a message: `a tuple of 2`, `a numpy.ndarray of float64`, `a dict`."""
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.partition('.')[0]}.{kind.__name__}"
    if hasattr(value, "dtype"):
        return f"a {name} of {value.dtype}"
    if isinstance(value, tuple | list):
        return f"a {name} of {len(value)}"
    return f"a {name}"


DATA_FIELDS = ("train_x", "train_y", "val_x", "val_y")
# Class ids cross-entropy takes: int64 (the documented dtype) and uint8 (torch accepts it, "Long or Byte").
CLASS_ID_DTYPES = ("int64", "uint8")


def check_datasets(experiment, data) -> None:
    """A torch experiment's `load_data` returned `Datasets` of tensors, one label per example in each split, at least
    one example in each, and (classification) int64 class ids from 0: each problem is one line naming load_data and
    the conversion that fixes it, before a model turns it into an error inside torch."""
    import torch

    at = f"experiment: {defined_at(experiment, 'load_data')}"
    if not all(hasattr(data, name) for name in (*DATA_FIELDS, "info")):
        raise ConfigError(
            f"{at}: returned {describe(data)}, not Datasets; return Datasets(train_x, train_y, val_x, val_y, "
            "info={...}) (from raytune_suite.experiments import Datasets); (X, y) is an estimator experiment's"
        )
    classification = experiment.TASK == "classification"
    for name in DATA_FIELDS:
        value = getattr(data, name)
        if not isinstance(value, torch.Tensor):
            raise ConfigError(
                f"{at}: its {name} is {describe(value)}, not a torch.Tensor; return "
                f"{to_tensor(name, value, classification)} in Datasets"
            )
    if not isinstance(data.info, dict):
        raise ConfigError(f"{at}: its info is {describe(data.info)}, not a dict; return info={{...}} or leave it out")
    for split in ("train", "val"):
        x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        if x.dim() == 0 or y.dim() == 0 or len(x) != len(y):
            raise ConfigError(
                f"{at}: {split}_x holds {len(x) if x.dim() else 0} example(s) but {split}_y "
                f"{len(y) if y.dim() else 0} label(s); return one label per example (rows along the first dimension)"
            )
    if len(data.train_y) == 0 or len(data.val_y) == 0:
        raise ConfigError(
            f"{at}: returned {len(data.train_y)} training and {len(data.val_y)} validation examples; both need at "
            "least one (check data.path and data.val_size)"
        )
    if classification:
        for name in ("train_y", "val_y"):
            check_class_ids(at, name, getattr(data, name))


def check_class_ids(at: str, name: str, y) -> None:
    if str(y.dtype).removeprefix("torch.") not in CLASS_ID_DTYPES:
        what = " (class ids, not one-hot rows or probabilities)" if y.is_floating_point() else ""
        raise ConfigError(
            f"{at}: its {name} is {y.dtype}, but classification labels are int64 class ids{what}; return {name}.long()"
        )
    if y.dim() != 1:
        raise ConfigError(
            f"{at}: its {name} has shape {tuple(y.shape)}; classification labels are one class id per example, "
            f"shape (n,) (one-hot rows: {name}.argmax(dim=1))"
        )
    if int(y.min()) < 0:
        raise ConfigError(f"{at}: its {name} holds the label {int(y.min())}; class ids run from 0 to classes - 1")


def to_tensor(name: str, value: Any, classification: bool) -> str:
    """The conversion that makes `value` what the task expects: class ids .long(), features .float()."""
    dtype = str(getattr(value, "dtype", ""))
    source = f"torch.from_numpy({name})" if type(value).__module__ == "numpy" else f"torch.as_tensor({name})"
    integer = dtype.startswith(("int", "uint")) and name.endswith("_x")  # token ids stay integers
    labels = name.endswith("_y") and classification
    return source + (".long()" if labels or integer else ".float()")


def check_outputs(experiment, data, out, n: int) -> None:
    """The model's output fits the task: one row per example, and a classifier one logit per class of the labels
    (a wider one would train without a word while never predicting some classes)."""
    import torch

    at = f"experiment: {defined_at(experiment, 'build_model')}"
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"{at}: the model returned {describe(out)} from forward; return a tensor of outputs")
    if experiment.TASK != "classification":
        if out.numel() != n:
            raise ConfigError(
                f"{at}: the model returns shape {tuple(out.shape)} for {n} examples; a regression model returns "
                "one prediction per example, e.g. shape (n, 1)"
            )
        return
    if out.dim() != 2 or out.shape[0] != n:
        raise ConfigError(
            f"{at}: the model returns shape {tuple(out.shape)} for {n} examples; a classification model returns "
            "logits of shape (n, classes)"
        )
    width = out.shape[1]
    classes = int(max(data.train_y.max(), data.val_y.max())) + 1
    declared = data.info.get("classes")  # a split may miss the last classes; info can say how many there are
    if classes > width or (width > classes and declared != width):
        raise ConfigError(
            f"{at}: the model outputs {width} logit(s) per example but load_data's labels run 0-{classes - 1} "
            f"({classes} classes); output one logit per class (e.g. nn.Linear(..., info['classes'])), or fix the "
            "labels in load_data"
        )


def input_mismatch(data, model) -> Callable[[BaseException], str | None]:
    """After the forward pass raised: the data's cause, if the features' dtype is not the model's weights'."""

    def cause(exc: BaseException) -> str | None:
        x = data.train_x
        weights = [p.dtype for p in model.parameters() if p.is_floating_point()]
        if not weights or "type" not in str(exc).lower():  # dtype errors name a type: "mat1 and mat2 ... dtype"
            return None
        want = weights[0]
        fix = {"float32": ".float()", "float64": ".double()", "float16": ".half()", "bfloat16": ".bfloat16()"}
        conversion = fix.get(str(want).removeprefix("torch."), f".to({want})")
        if x.is_floating_point() and x.dtype not in weights:
            return (
                f"its train_x is {x.dtype} but the model's weights are {want}; return train_x{conversion} and "
                f"val_x{conversion}"
            )
        if not x.is_floating_point() and not has_embedding(model):
            return (
                f"its train_x holds {x.dtype} but the model's first layers take {want} features; return "
                f"train_x{conversion} and val_x{conversion} (integer token ids go into an nn.Embedding)"
            )
        return None

    return cause


def has_embedding(model) -> bool:
    from torch import nn

    return any(isinstance(m, nn.Embedding | nn.EmbeddingBag) for m in model.modules())


def forward_and_backward(experiment, data, sections: dict[str, dict[str, Any]]) -> None:
    import torch

    with user_code(experiment, "build_model"):
        model = experiment.build_model(experiment.ModelConfig.model_validate(sections["model"]), data.info)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"experiment: {experiment.ref} build_model returned {type(model).__name__}, not a torch.nn.Module, "
            f"for model {sections['model']}; return the model"
        )
    x, y = data.train_x[:EXAMPLES], data.train_y[:EXAMPLES]
    step = "a training step (the model's forward and the task's loss)"
    with user_code(experiment, step, function="build_model", data_cause=input_mismatch(data, model)):
        model.train()
        out = model(x)
    check_outputs(experiment, data, out, len(x))
    with user_code(experiment, step, function="build_model"):
        loss = experiment.task.loss(out, y)
        # No optimizer: building one imports torch._dynamo (~2 s here), and the optimizer is not the user's code.
        loss.backward()
        model.eval()
        with torch.no_grad():
            experiment.task.metrics(model(data.val_x[:EXAMPLES]).float(), data.val_y[:EXAMPLES])


class user_code:
    """Turns an exception raised by the experiment's code into one line naming where in that code it arose.

    Args: experiment; what (the step, for the fix: "fix build_model in the experiment"); function (the experiment's
    function to name when the traceback holds no frame of the experiment's own code; default: `what`); data_cause
    (called with the exception: a sentence blaming what load_data returned, or None).
    """

    def __init__(
        self,
        experiment,
        what: str,
        function: str | None = None,
        data_cause: Callable[[BaseException], str | None] | None = None,
    ):
        self.experiment, self.what, self.data_cause = experiment, what, data_cause
        self.function = function or what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, ConfigError) or not isinstance(exc, Exception):
            return False
        message = one_line(exc) or "(no message)"
        cause = self.data_cause(exc) if self.data_cause else None
        if cause:
            raise ConfigError(
                f"experiment: {defined_at(self.experiment, 'load_data')}: {cause} (the model raised "
                f"{type(exc).__name__}: {message})"
            ) from None
        where = user_frame(self.experiment, tb, self.function)
        hint = data_hint(message)
        fix = f"{hint}" if hint else f"fix {self.what} in the experiment"
        raise ConfigError(
            f"experiment: {where}: {type(exc).__name__}: {message}; {fix} (checked on a few examples before "
            "anything starts)"
        ) from None
