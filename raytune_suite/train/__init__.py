"""What runs in a trial: the experiment kinds, the torch trainable (one process or DDP), the estimator
trial, optimizers, LR schedules and regularisation."""
