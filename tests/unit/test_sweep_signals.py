"""How the driver reacts to SIGTERM and Ctrl-C around `ray.init`: held until Ray is up, never cut mid-way."""

import os
import signal
import time

import pytest
import ray._private.utils as ray_utils

from raytune_suite.run.sweep import stops_held_until_ray_is_up


def test_a_sigterm_during_ray_start_up_is_raised_only_once_start_up_is_done():
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt), stops_held_until_ray_is_up():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between bytecodes of this thread
        reached_the_end = True
    assert reached_the_end


def test_ray_init_cannot_swap_in_its_own_sigterm_handler_while_start_up_is_held():
    before = signal.getsignal(signal.SIGTERM)
    with stops_held_until_ray_is_up():
        held = signal.getsignal(signal.SIGTERM)
        ray_utils.set_sigterm_handler(lambda signum, frame: None)  # what ray.init does first
        assert signal.getsignal(signal.SIGTERM) is held
    assert signal.getsignal(signal.SIGTERM) is before
    assert ray_utils.set_sigterm_handler.__name__ == "set_sigterm_handler"


def test_a_second_stop_request_cuts_start_up_short():
    reached = []
    with pytest.raises(KeyboardInterrupt), stops_held_until_ray_is_up():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        reached.append("after first")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        reached.append("after second")
    assert reached == ["after first"]


def test_a_start_up_that_outlasts_the_grace_period_is_interrupted():
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), stops_held_until_ray_is_up(grace_s=0.2):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # a ray.init that keeps retrying
    assert time.monotonic() - started < 5


def test_without_a_stop_request_nothing_is_raised_and_handlers_are_put_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stops_held_until_ray_is_up():
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
