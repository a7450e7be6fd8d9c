"""The generated components, one module attribute per registry name: `lossforge_pml.generated:pml_arcface_loss`.

Attributes are made on first access (PEP 562 `__getattr__`) by `lossforge_pml.adapters.make_component`;
a missing or too old pytorch-metric-learning raises `lossforge_pml.adapters.PMLMissingError` naming the
component and what to install.
"""

from __future__ import annotations

from typing import Any

from lossforge_pml.table import components


def __getattr__(name: str) -> Any:
    if name.startswith("__") or name not in components():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from lossforge_pml.adapters import make_component  # torch and PML: only when a component is used

    return make_component(name)


def __dir__() -> list[str]:
    return sorted(components())
