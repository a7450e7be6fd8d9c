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
    """``cfg.optimizer`` as a typed value."""

    name: str = "adam"  # a key of OPTIMIZERS
    lr: float = 1e-3  # learning rate, > 0
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    momentum: float = 0.0  # SGD only


def build_optimizer(config: OptimizerConfig, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over ``parameters``; an unknown name or ``lr <= 0`` fails clearly.

    >>> build_optimizer(OptimizerConfig(name="adamm"), [])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown optimizer 'adamm'. Did you mean 'adam' or 'adamw'? Available: adam, adamw, sgd.
    """
    if config.name not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {config.name!r}.{did_you_mean(config.name, OPTIMIZERS)} "
            f"Available: {', '.join(sorted(OPTIMIZERS))}."
        )
    if config.lr <= 0:
        raise ValueError(f"optimizer: expected `lr` > 0, got {config.lr}")
    extra = {"momentum": config.momentum} if config.name == "sgd" else {}
    return OPTIMIZERS[config.name](parameters, lr=config.lr, weight_decay=config.weight_decay, **extra)
