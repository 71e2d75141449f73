"""The search benchmark (`make bench-search`): which search strategy finds a good configuration with the least
compute, over many problems, in minutes.

- `problems.py`: the problems: tables recorded from the suite's own experiments (`record.py`, `tables/`) and the
  multi-fidelity Hartmann functions (`hartmann.py`);
- `simulate.py`: a sweep replayed in simulated time, every decision taken by the strategy's own searcher and
  scheduler objects; `replay.py`: the same replay through a real Ray Tune `Tuner` (the tests compare the two);
- `strategies.py`: the strategies (the suite's searchers and schedulers, Optuna's TPE, Ray Tune's BOHB);
- `stats.py`: interquartile means, bootstrap intervals, speed-ups; `report.py`: CSV, plots, summary, MLflow;
- `__main__.py`: the command.
"""
