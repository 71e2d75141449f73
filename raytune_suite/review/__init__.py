"""Reading a sweep back: the report (table, plots, HTML), what a finished sweep publishes (the report, the
best model), and the MLflow UI."""
