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
