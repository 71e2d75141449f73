"""Print the linear baselines for experiments/rt_transformer.yaml: logistic regression on word and bigram counts.

Same reviews, same train / validation split (the sweep's `tune.seed`) and the same training-split vocabulary rule
as the Transformer and the embedding bag, so the validation accuracies compare directly. Each baseline is printed
at scikit-learn's default C=1 and at the best C of a small grid picked on the validation set itself, which is what
a sweep does for its own models (both figures are optimistic in the same way).

    python benchmarks/nlp_baseline.py [experiments/rt_transformer.yaml] [--set data.dataset=full ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from raytune_suite.config import load_config
from raytune_suite.experiments import load_experiment

DEFAULT = Path(__file__).resolve().parents[1] / "experiments" / "rt_transformer.yaml"
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
FEATURES = {1: "bag-of-words", 2: "words + bigrams"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    experiment = load_experiment(cfg.experiment)
    data_cfg = experiment.DataConfig.model_validate(cfg.data)
    print(f"logistic regression, {cfg.name} split (seed {cfg.tune.seed}), validation accuracy:")
    for ngrams, features in FEATURES.items():
        started = time.perf_counter()
        scores = {c: experiment.bag_of_words_baseline(data_cfg, cfg.tune.seed, ngrams=ngrams, c=c) for c in C_GRID}
        best = max(scores, key=scores.__getitem__)
        print(f"  {features:<16} C=1: {scores[1.0]:.4f}   best C={best:g}: {scores[best]:.4f}   "
              f"({time.perf_counter() - started:.1f}s)")  # fmt: skip


if __name__ == "__main__":
    main()
