"""lossforge: compare loss functions honestly.

The public API, importable without importing torch (names are listed from package metadata):

>>> from lossforge import list_losses
>>> list_losses("*hinge")
['hinge', 'multiclass_hinge']
"""

from __future__ import annotations

from typing import Any

from lossforge.registry import LOSSES, MINERS, Component, RegistryError

__version__ = "0.1.0"
__all__ = [
    "RegistryError",
    "build_loss",
    "build_miner",
    "list_losses",
    "list_miners",
    "loss_info",
    "miner_info",
]


def list_losses(pattern: str = "*") -> list[str]:
    """Sorted names of the registered losses matching the fnmatch ``pattern``."""
    return LOSSES.names(pattern)


def list_miners(pattern: str = "*") -> list[str]:
    """Sorted names of the registered miners matching the fnmatch ``pattern``."""
    return MINERS.names(pattern)


def build_loss(name: str, **params: Any) -> Any:
    """Build the loss registered as ``name``: ``build_loss("focal", gamma=2.0)`` → an ``nn.Module``."""
    return LOSSES.build(name, **params)


def build_miner(name: str, **params: Any) -> Any:
    """Build the miner registered as ``name``: ``build_miner("semihard_triplets", margin=0.2)``."""
    return MINERS.build(name, **params)


def loss_info(name: str) -> Component:
    """Where the loss ``name`` comes from: ``.distribution``, ``.version``, ``.target`` (not loaded)."""
    return LOSSES.info(name)


def miner_info(name: str) -> Component:
    """Where the miner ``name`` comes from: ``.distribution``, ``.version``, ``.target`` (not loaded)."""
    return MINERS.info(name)
