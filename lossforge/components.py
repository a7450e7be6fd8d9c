"""The registered components by name: list them (fnmatch patterns, filtered by task or tuple kind), build
them, and say where each comes from. Importing this module imports neither torch nor any plugin.

```pycon
>>> {"hinge", "multiclass_hinge"} <= set(list_losses("*hinge"))
True

```
"""

from __future__ import annotations

from typing import Any

from lossforge.contract import loss_traits, miner_traits
from lossforge.registry import LOSSES, MINERS, Component, Registry, RegistryError


def list_losses(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Sorted names of the registered losses matching the fnmatch `pattern`; with `task`, only those
    that declare it (this loads them; one that fails to load is left out — `lossforge list` reports it).

    ```pycon
    >>> from lossforge.contract import Task
    >>> {"l1", "l2"} <= set(list_losses("l?", task=Task.REGRESSION))
    True

    ```
    """
    names = LOSSES.names(pattern)
    if task is None:
        return names
    return [name for name in names if _loads(LOSSES, name) and task in loss_traits(LOSSES.load(name)).tasks]


def list_miners(pattern: str = "*", *, tuple_kind: str | None = None) -> list[str]:
    """Sorted names of the registered miners matching `pattern`; with `tuple_kind` (`"pair"` or
    `"triplet"`), only those that mine it."""
    names = MINERS.names(pattern)
    if tuple_kind is None:
        return names
    return [name for name in names if _loads(MINERS, name) and miner_traits(MINERS.load(name)).tuple_kind == tuple_kind]


def _loads(registry: Registry, name: str) -> bool:
    try:
        registry.load(name)
    except RegistryError:
        return False
    return True


def build_loss(name: str, **params: Any) -> Any:
    """Build the loss registered as `name`: `build_loss("focal", gamma=2.0)` → an `nn.Module`."""
    return LOSSES.build(name, **params)


def build_miner(name: str, **params: Any) -> Any:
    """Build the miner registered as `name`: `build_miner("semihard_triplets", margin=0.2)`."""
    return MINERS.build(name, **params)


def loss_info(name: str) -> Component:
    """Where the loss `name` comes from: `.distribution`, `.version`, `.target` (not loaded)."""
    return LOSSES.info(name)


def miner_info(name: str) -> Component:
    """Where the miner `name` comes from: `.distribution`, `.version`, `.target` (not loaded)."""
    return MINERS.info(name)
