"""The optimizer, named in configs by registry name (`optimizer=adam | adamw | sgd`).

A loss with parameters of its own (class proxies, a classifier's weight matrix: see
[lossforge.contract.LossPlugin.lr_multiplier][]) is trained by the same optimizer in a second parameter
group, the way pytorch-metric-learning's examples give such a loss an optimizer of its own: learning rate
`lr * multiplier` — `optimizer.loss_lr_multiplier` when set, else the loss's declared
`lr_multiplier` — and **no weight decay**. The proxy losses compare embeddings with *normalised*
proxies, so a proxy's norm does not change the loss: decay would not regularise them, only shrink their
norms and so silently raise their effective step size over training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from lossforge.contract import did_you_mean

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


@dataclass(frozen=True)
class OptimizerConfig:
    """`cfg.optimizer` as a typed value, checked when it is made (before any run starts).

    ```pycon
    >>> OptimizerConfig(name="adamm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown optimizer 'adamm'. Did you mean 'adam' or 'adamw'? Available: adam, adamw, sgd.

    ```
    """

    name: str = "adam"  # a key of OPTIMIZERS
    lr: float = 1e-3  # learning rate, > 0
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw), >= 0; never on the loss's own parameters
    momentum: float = 0.0  # SGD only
    loss_lr_multiplier: float | None = None  # the loss's parameters train at lr * this; None: the loss's own

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
        if self.loss_lr_multiplier is not None and not self.loss_lr_multiplier > 0:
            raise ValueError(
                f"optimizer: expected `loss_lr_multiplier` > 0 or null (the loss's own), got {self.loss_lr_multiplier}"
            )


def build_optimizer(
    config: OptimizerConfig,
    parameters: Iterable[torch.nn.Parameter],
    *,
    loss_parameters: Iterable[torch.nn.Parameter] = (),
    loss_lr_multiplier: float = 1.0,
) -> torch.optim.Optimizer:
    """The optimizer `config` names: the model's `parameters` at `config.lr` with its weight decay,
    and — when the loss has parameters of its own — a second group of `loss_parameters` at `config.lr`
    times `config.loss_lr_multiplier` (or, when that is `None`, the loss's declared
    `loss_lr_multiplier`), without weight decay.

    ```pycon
    >>> model, proxies = torch.nn.Linear(4, 2), torch.nn.Parameter(torch.zeros(3, 2))
    >>> optimizer = build_optimizer(OptimizerConfig(lr=0.01), model.parameters(), loss_parameters=[proxies],
    ...                             loss_lr_multiplier=100.0)
    >>> [(len(group["params"]), group["lr"], group["weight_decay"]) for group in optimizer.param_groups]
    [(2, 0.01, 0.0), (1, 1.0, 0.0)]

    ```
    """
    extra = {"momentum": config.momentum} if config.name == "sgd" else {}
    groups: list[dict[str, Any]] = [{"params": list(parameters)}]
    own = list(loss_parameters)
    if own:
        multiplier = config.loss_lr_multiplier if config.loss_lr_multiplier is not None else loss_lr_multiplier
        groups.append({"params": own, "lr": config.lr * multiplier, "weight_decay": 0.0})
    return OPTIMIZERS[config.name](groups, lr=config.lr, weight_decay=config.weight_decay, **extra)
