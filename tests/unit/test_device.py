"""The trial's device: the GPU Ray assigned, or the CPU after one warning when CUDA is absent."""

import pytest
import torch

from raytune_suite.train.trainable import pick_device


def test_a_trial_given_a_gpu_without_cuda_trains_on_cpu_after_one_warning():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.warns(UserWarning, match="CUDA is not available; training on CPU") as caught:
        assert pick_device(0.5).type == "cpu"
    assert len(caught) == 1
    assert pick_device(0).type == "cpu"
