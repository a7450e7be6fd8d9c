"""lossforge: compare loss functions honestly.

The public API, importable without importing torch (names are listed from package metadata):

>>> from lossforge import list_losses
>>> {"hinge", "multiclass_hinge"} <= set(list_losses("*hinge"))
True
"""

from __future__ import annotations

from lossforge._version import __version__
from lossforge.components import build_loss, build_miner, list_losses, list_miners, loss_info, miner_info
from lossforge.registry import RegistryError

__all__ = [
    "RegistryError",
    "__version__",
    "build_loss",
    "build_miner",
    "list_losses",
    "list_miners",
    "loss_info",
    "miner_info",
]
