"""The optimizer, named in configs by registry name (``optimizer=adam | adamw | sgd``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from lossforge.contract import did_you_mean

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


@dataclass(frozen=True)
class OptimizerConfig:
    """``cfg.optimizer`` as a typed value, checked when it is made (before any run starts).

    >>> OptimizerConfig(name="adamm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown optimizer 'adamm'. Did you mean 'adam' or 'adamw'? Available: adam, adamw, sgd.
    """

    name: str = "adam"  # a key of OPTIMIZERS
    lr: float = 1e-3  # learning rate, > 0
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw), >= 0
    momentum: float = 0.0  # SGD only

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer {self.name!r}.{did_you_mean(self.name, OPTIMIZERS)} "
                f"Available: {', '.join(sorted(OPTIMIZERS))}."
            )
        if not self.lr > 0:
            raise ValueError(f"optimizer: expected `lr` > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"optimizer: expected `weight_decay` >= 0, got {self.weight_decay}")


def build_optimizer(config: OptimizerConfig, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over ``parameters``."""
    extra = {"momentum": config.momentum} if config.name == "sgd" else {}
    return OPTIMIZERS[config.name](parameters, lr=config.lr, weight_decay=config.weight_decay, **extra)
