"""An experiment module that fails while it runs its top level (a bug in the module, not a missing package)."""

SCALE = {"small": 1}["large"]
