"""Experiment modules: one `<name>.py` (model + data) and one `<name>.yaml` (defaults + space + budget) each.

The protocol a module implements, with a worked example: docs/writing-an-experiment.md.
"""
