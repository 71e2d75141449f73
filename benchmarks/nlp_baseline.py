"""Print the bag-of-words baseline for experiments/rt_transformer.yaml: logistic regression on word counts.

Same reviews, same train / validation split (the sweep's `tune.seed`) and the same training-split vocabulary rule
as the Transformer, so the two validation accuracies compare directly.

    python benchmarks/nlp_baseline.py [experiments/rt_transformer.yaml] [--set data.dataset=full ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from raytune_suite.config import load_config
from raytune_suite.experiments import load_experiment

DEFAULT = Path(__file__).resolve().parents[1] / "experiments" / "rt_transformer.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    experiment = load_experiment(cfg.experiment)
    data_cfg = experiment.DataConfig.model_validate(cfg.data)
    started = time.perf_counter()
    accuracy = experiment.bag_of_words_baseline(data_cfg, cfg.tune.seed)
    print(f"bag-of-words logistic regression, {cfg.name} split (seed {cfg.tune.seed}): "
          f"val_accuracy={accuracy:.4f} ({time.perf_counter() - started:.1f}s)")  # fmt: skip


if __name__ == "__main__":
    main()
