"""Everything a command's input must pass before Ray, MLflow or a folder is touched: the preflight, the
smoke check of the experiment's own code, the plan and its calibration."""
