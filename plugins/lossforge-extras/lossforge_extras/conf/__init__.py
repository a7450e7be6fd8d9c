"""Hydra configs of lossforge-extras, added to lossforge's search path by the `lossforge.configs` entry point."""
