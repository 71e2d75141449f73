"""Errors the CLI turns into exit codes: bad input (2) versus a failed run (1)."""


class ConfigError(ValueError):
    """Bad user input. The message is one line that names the field and says how to fix it."""


class RunFailure(RuntimeError):
    """The sweep ran but did not succeed (trials errored, the cluster went away, ...)."""
