"""Training one experiment: the LightningModule, the optimizer, building from a config, and the run."""
