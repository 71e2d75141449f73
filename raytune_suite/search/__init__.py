"""Which configs the sweep tries and which trials go on: the searchers, the schedulers, and how a Bayesian
searcher is told results of different fidelity."""
