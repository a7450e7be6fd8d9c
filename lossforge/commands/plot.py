"""``lossforge plot``: each loss and its derivative against its task's axis."""

from lossforge.evaluation.loss_figures import main

__all__ = ["main"]
