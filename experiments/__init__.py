"""Experiment modules: one `<name>.py` (model + data) and one `<name>.yaml` (defaults + space + budget) each.

See `raytune_suite/experiments.py` for the protocol a module implements.
"""
