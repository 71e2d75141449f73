"""What of Ray's own output a sweep's console shows (console.py), and what a sweep folder keeps for `--resume DIR`."""

import logging

from raytune_suite.run import console
from raytune_suite.run.sweep_folder import flags_text, resumed_flags, save_flags, stored_flags


def test_rays_token_notice_and_tunes_restore_hint_are_dropped_and_their_other_lines_kept(caplog):
    env: dict[str, str] = {}
    console.quiet_ray(env)
    console.quiet_ray(env)  # once is enough: no second filter
    token = logging.getLogger("ray._private.authentication.authentication_token_setup")
    tune = logging.getLogger("ray.tune.tune")
    assert sum(isinstance(f, console.Drop) for f in tune.filters) == 1
    with caplog.at_level(logging.INFO):
        token.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.")
        token.warning("Token authentication is disabled for this Ray cluster. Anyone with network access ...")
        tune.warning('Experiment has been interrupted, but the most recent state was saved.\nResume experiment with: '
                     'Tuner.restore(path="/x", trainable=...)')  # fmt: skip
        tune.warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.")
    shown = [r.getMessage() for r in caplog.records]
    assert shown == [
        "Token authentication is disabled for this Ray cluster. Anyone with network access ...",
        "Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.",
    ]
    assert env["RAY_COLOR_PREFIX"] == "0"  # pytest captures the console: not a terminal


def test_a_sweep_folder_keeps_its_flags_and_a_flag_given_again_wins(tmp_path):
    sweep = str(tmp_path)
    assert stored_flags(sweep) == {}  # a sweep saved before flags were kept
    save_flags({"num_cpus": 1, "num_gpus": None, "address": "auto", "register_model": None}, sweep)
    assert stored_flags(sweep) == {"num_cpus": 1, "address": "auto"}
    given = {"num_cpus": 2, "num_gpus": None, "address": None, "register_model": "m"}
    assert resumed_flags(sweep, given) == {"num_cpus": 2, "num_gpus": None, "address": "auto", "register_model": "m"}
    assert flags_text(stored_flags(sweep)) == "--num-cpus 1 --address auto"
