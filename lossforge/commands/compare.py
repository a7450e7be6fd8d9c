"""``lossforge compare``: a sweep's runs read back from MLflow, with a verdict on every difference."""

from lossforge.evaluation.compare import main

__all__ = ["main"]
