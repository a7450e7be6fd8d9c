"""Class weights from the training targets' class counts: inverse frequency and the effective number of samples
(Cui et al. 2019), shared by weighted cross-entropy, focal and LDAM.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lossforge.losses.base import (
    shape,
)

WEIGHT_SCHEMES = ("inverse_frequency", "effective_number")


def class_counts(targets: Tensor, num_classes: int) -> Tensor:
    """How many training samples each class has, `(C,)` float64; probability rows count fractionally.

    Examples:
        >>> class_counts(torch.tensor([0, 2, 2]), 3)
        tensor([1., 0., 2.], dtype=torch.float64)
    """
    if targets.dim() == 2 and targets.shape[1] == num_classes:
        return targets.detach().to(torch.float64).sum(dim=0)
    if targets.dim() != 1 or targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(
            f"expected training targets as class indices (N,) of an integer dtype or rows "
            f"(N, {num_classes}), got {shape(targets)} of dtype {targets.dtype}"
        )
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"expected training class indices in [0, {num_classes - 1}], "
            f"got range [{int(targets.min())}, {int(targets.max())}]"
        )
    return torch.bincount(targets.detach().long(), minlength=num_classes).to(torch.float64)


def _require_every_class(counts: Tensor, scheme: str) -> None:
    missing = (counts <= 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"{scheme!r} class weights need every class in the training targets; class(es) {missing} "
            f"have no samples. Give `weights` as a list to weight them by hand."
        )


def inverse_frequency_weights(counts: Tensor) -> Tensor:
    r"""Inverse-frequency class weights $w_c = N / (C\, n_c)$ (a balanced data set gives all ones).

    Examples:
        >>> inverse_frequency_weights(torch.tensor([6.0, 2.0]))
        tensor([0.6667, 2.0000])
    """
    _require_every_class(counts, "inverse_frequency")
    return counts.sum() / (counts.numel() * counts)


def effective_number_weights(counts: Tensor, beta: float = 0.999) -> Tensor:
    r"""Class-balanced weights from the effective number of samples (Cui et al., 2019).

    $$
    w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}}, \qquad \sum_c w_c = C
    $$

    $\beta \to 1$ approaches inverse frequency, $\beta = 0$ gives uniform weights.

    Examples:
        >>> effective_number_weights(torch.tensor([6.0, 2.0]), beta=0.5)
        tensor([0.8649, 1.1351])
    """
    if not 0 <= beta < 1:
        raise ValueError(f"effective_number: expected `beta` in [0, 1), got {beta}")
    _require_every_class(counts, "effective_number")
    weights = (1 - beta) / (1 - beta**counts)
    return weights * (counts.numel() / weights.sum())


def _check_beta(loss_name: str, beta: float) -> float:
    if not 0 <= beta < 1:  # also rejects NaN
        raise ValueError(f"{loss_name}: expected `beta` in [0, 1), got {beta}")
    return float(beta)


def _check_scheme(loss_name: str, parameter: str, scheme: str, alternatives: str) -> str:
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(
            f"{loss_name}: expected `{parameter}` to be {alternatives} or one of {list(WEIGHT_SCHEMES)}, got {scheme!r}"
        )
    return scheme


def scheme_weights(loss_name: str, scheme: str, targets: Tensor, num_classes: int, *, beta: float) -> Tensor:
    r"""Per-class weights by a named scheme from the training targets: the one computation every
    class-weighted loss's `prepare` shares, `(C,)` in the default dtype on the targets' device.

    `num_classes = 1` is the binary task (what the training pipeline passes there): the labels' two
    classes, negatives first, weighted as two classes.

    Args:
        loss_name: named in errors.
        scheme: `"inverse_frequency"` or `"effective_number"`.
        targets: class indices `(N,)`, probability rows `(N, C)`, or binary labels `(N,)`.
        num_classes: $C$, or 1 for binary labels.
        beta: $\beta$ of `"effective_number"`.

    Examples:
        >>> scheme_weights("focal", "inverse_frequency", torch.tensor([1, 1, 1, 0]), 1, beta=0.0)
        tensor([2.0000, 0.6667])
    """
    if num_classes == 1:
        targets, num_classes = (targets > 0).long(), 2
    try:
        counts = class_counts(targets, num_classes)
        if scheme == "inverse_frequency":
            weights = inverse_frequency_weights(counts)
        else:
            weights = effective_number_weights(counts, beta)
    except ValueError as error:
        raise ValueError(f"{loss_name}: {error}") from None
    return weights.to(device=targets.device, dtype=torch.get_default_dtype())


def _adopt_prepared(module: nn.Module, buffer: str, state_dict: dict, prefix: str) -> None:
    """Before a checkpoint loads: give a still-`None` buffer that `prepare` fills the checkpoint's shape,
    so a fresh module adopts the weights of the run that saved it without seeing the training labels."""
    key = prefix + buffer
    if getattr(module, buffer) is None and key in state_dict:
        setattr(module, buffer, torch.empty_like(state_dict[key]))
