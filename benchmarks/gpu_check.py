"""The GPU check a maintainer runs on a GPU machine: what the machine has, then the GPU test set (tests/gpu) with
its printed figures (GPU utilisation during a sweep).

    .venv/bin/python benchmarks/gpu_check.py          # exit code: pytest's

On a machine without CUDA every test of the set is skipped and the script says so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: tests/gpu would be skipped; run this on a GPU machine")
        return 0
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {len(names)} device(s): {', '.join(names)}")
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    print(smi.stdout.strip() or smi.stderr.strip())
    cmd = [sys.executable, "-m", "pytest", str(REPO / "tests" / "gpu"), "-s", "-q", "-rs", "--durations=0"]
    return subprocess.run(cmd, cwd=REPO, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
