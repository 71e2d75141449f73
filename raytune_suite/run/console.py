"""What of Ray's own output reaches a sweep's console: decided here, applied by `run_sweep` before Ray starts.

The suite prints its own lines for what Ray would say (progress, the resume command); three of Ray's lines are noise
beside them or wrong for a `raytune-suite` user. Each is removed through something Ray reads or the standard
`logging` module, never a patch, and nothing Ray decides changes:
- "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out", logged by every
  local `ray.init` (Ray turns token authentication on by default and writes the token itself): the notice is
  dropped, the setting kept. Ray's warning that authentication is *disabled* stays.
- colour codes in worker lines (`\x1b[36m(train_trial pid=...)\x1b[0m`) when the console is not a terminal (a
  pipe, a CI log, a file): Ray's `RAY_COLOR_PREFIX=0`.
- Tune's "Experiment has been interrupted ... Resume experiment with: Tuner.restore(path=..., trainable=...)" after a
  stop: the Python API, which a command-line user cannot run; the suite prints its own resume command instead
  (`sweep_folder.ResumeHint`).
Logger names and texts are Ray 2.60's; tests/integration/test_resume_command.py fails if one of these lines is back.
"""

from __future__ import annotations

import logging
import os
import sys

# (logger, the start of the message it drops)
DROPPED = (
    ("ray._private.authentication.authentication_token_setup", "Token authentication is enabled for this Ray cluster"),
    ("ray.tune.tune", "Experiment has been interrupted, but the most recent state was saved.\nResume experiment with:"),
)


def quiet_ray(env=os.environ) -> None:
    """Settings for Ray's start and Tune's fit in this process: see the module docstring."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        env.setdefault("RAY_COLOR_PREFIX", "0")
    for name, text in DROPPED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Drop) and f.text == text for f in logger.filters):
            logger.addFilter(Drop(text))


class Drop(logging.Filter):
    """Drops a logger's records whose message starts with `text`; its other records pass."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.text)
