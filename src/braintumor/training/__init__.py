"""Training engine (Lightning): modules, losses, callbacks, fold runner, cross-validation."""
