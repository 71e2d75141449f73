"""The GPU set: real CUDA devices only. Every test here is skipped on a machine without CUDA (CI here has none);
`benchmarks/gpu_check.py` runs the set on a GPU machine and prints what it measured."""

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device: the GPU set runs on a GPU machine (benchmarks/gpu_check.py)")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
