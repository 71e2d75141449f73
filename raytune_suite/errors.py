"""Errors the CLI turns into exit codes: bad input (2) versus a failed run (1)."""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConfigError(ValueError):
    """Bad user input. The message is one line that names the field and says how to fix it."""


class RunFailure(RuntimeError):
    """The sweep ran but did not succeed (trials errored, the cluster went away, ...)."""


def strip_colour(text: str) -> str:
    """Text without terminal colour codes (Ray colours its error messages; MLflow and logs want plain text)."""
    return _ANSI.sub("", text)


class UserCodeError(RuntimeError):
    """Raised in a trial when the experiment's own code (data, model, training step) failed: it would fail the same
    way again, so the sweep does not retry it (tuner.py); lost workers and nodes are still retried.

    Args: kind (the original exception's type name), message, where (`file:line in function`)."""

    def __init__(self, kind: str, message: str, where: str):
        super().__init__(kind, message, where)
        self.kind, self.message, self.where = kind, message, where

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"
