"""Errors the CLI turns into exit codes: bad input (2) versus a failed run (1)."""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# torch's words for an error whose cause is what load_data returned -> where the fix belongs. The smoke check finds
# these causes from the data itself first (smoke.check_datasets); these name them in a trial too (UserCodeError).
DATA_HINTS = (
    (
        re.compile(r"must be Tensor, not numpy\.ndarray|'numpy\.ndarray' object has no attribute"),
        "load_data returned numpy arrays: return torch tensors in Datasets (torch.from_numpy(x).float(), class ids "
        "torch.from_numpy(y).long())",
    ),
    (
        re.compile(r"object has no attribute '(train_x|train_y|val_x|val_y|info)'"),
        "a torch experiment's load_data returns Datasets(train_x, train_y, val_x, val_y, info={...}) (from "
        "raytune_suite.experiments import Datasets); (X, y) is an estimator experiment's",
    ),
    (
        re.compile(r"expected (target dtype to be|scalar type) Long"),
        "classification labels are int64 class ids: return train_y.long() and val_y.long() from load_data",
    ),
    (
        re.compile(r"must have the same dtype|type \(\w+\) and \w+ type \(\w+\) should be the same"),
        "the features' dtype is not the model's weights': return train_x.float() and val_x.float() from load_data",
    ),
    (
        re.compile(r"Target -?\d+ is out of bounds"),
        "a label is outside the model's outputs: class ids run 0 to classes - 1 (load_data) and the model outputs one "
        "logit per class (build_model, e.g. info['classes'])",
    ),
)


class ConfigError(ValueError):
    """Bad user input. The message is one line that names the field and says how to fix it."""


class RunFailure(RuntimeError):
    """The sweep ran but did not succeed (trials errored, the cluster went away, ...)."""


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def data_hint(message: str) -> str | None:
    """Where the fix belongs when torch's message says the data was wrong (`DATA_HINTS`), else None."""
    return next((hint for pattern, hint in DATA_HINTS if pattern.search(message)), None)


def strip_colour(text: str) -> str:
    """Text without terminal colour codes (Ray colours its error messages; MLflow and logs want plain text)."""
    return _ANSI.sub("", text)


class UserCodeError(RuntimeError):
    """Raised in a trial when the experiment's own code (data, model, training step) failed: it would fail the same
    way again, so the sweep does not retry it (tuner.py); lost workers and nodes are still retried.

    Args: kind (the original exception's type name), message, where (`file:line in function`). A message whose
    cause is the data (`data_hint`) gets the fix in load_data appended."""

    def __init__(self, kind: str, message: str, where: str):
        super().__init__(kind, message, where)  # the message as given: unpickling calls __init__ with these again
        hint = data_hint(message)
        self.kind, self.message, self.where = kind, f"{message}; {hint}" if hint else message, where

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"
