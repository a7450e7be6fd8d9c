"""What every built-in loss shares: `reduction`, the thin `Loss` base, and errors that teach.

A third-party loss does not need anything from here (the plugin contract is plain `torch.nn.Module` +
class attributes, written down in [lossforge.contract][]); lossforge's own losses use it so they
meet that contract in one way.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from lossforge.contract import Task
from lossforge.contract import shape as shape  # re-exported: every loss module formats shapes from here

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")


class LossInputError(ValueError):
    """Raised when a loss gets a prediction/target of the wrong shape, dtype or value range."""


def check_reduction(loss_name: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> Reduction:
    """Return `reduction` if it is one of `allowed`, else raise a `ValueError` naming the loss.

    ```pycon
    >>> check_reduction("l1", "sum")
    'sum'

    ```
    """
    if reduction not in allowed:
        raise ValueError(f"{loss_name}: expected `reduction` in {list(allowed)}, got {reduction!r}")
    return reduction  # type: ignore[return-value]  # checked just above


def reduce(values: Tensor, reduction: str, weights: Tensor | None = None) -> Tensor:
    """Reduce per-element `values` by `"mean"`, `"sum"` or `"none"`.

    With `weights` the mean is the weighted mean $\\sum_i w_i \\ell_i / \\sum_i w_i$ and the sum is
    $\\sum_i w_i \\ell_i$; `"none"` returns $w_i \\ell_i$. An empty input reduces to `0`
    (`"mean"` of nothing is defined as 0 here, so a batch without valid tuples still backpropagates).

    ```pycon
    >>> reduce(torch.tensor([1.0, 2.0, 3.0]), "mean")
    tensor(2.)
    >>> reduce(torch.tensor([1.0, 3.0]), "mean", weights=torch.tensor([3.0, 1.0]))
    tensor(1.5000)

    ```
    """
    if weights is not None:
        values = values * weights
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        if values.numel() == 0:
            return values.sum()  # 0, still attached to the graph
        if weights is None:
            return values.mean()
        return values.sum() / weights.sum()
    raise ValueError(f"expected `reduction` in {list(REDUCTIONS)}, got {reduction!r}")


def input_error(loss_name: str, expected: str, got: str) -> LossInputError:
    """Build the error every loss raises for bad input: which loss, what it expected, what it got.

    ```pycon
    >>> str(input_error("l1", "prediction and target of the same shape", "(4,) and (4, 2)"))
    'l1: expected prediction and target of the same shape, got (4,) and (4, 2)'

    ```
    """
    return LossInputError(f"{loss_name}: expected {expected}, got {got}")


class Loss(nn.Module):
    """Thin base for lossforge's built-in losses: holds `reduction` and `scan_targets`, declares `tasks`.

    Subclasses set `name` (the registry name, used in error messages) and `tasks`, take keyword-only
    constructor parameters with defaults, and validate them eagerly. `scan_targets` (see
    [lossforge.contract.LossPlugin][]) starts `True`: a loss called on its own checks its targets'
    values; the training module turns it off because the data were validated once when they were built.
    Losses that scan nothing ignore it.
    """

    name: ClassVar[str] = "loss"
    tasks: ClassVar[tuple[Task, ...]] = ()

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(self.name, reduction)
        self.scan_targets = True

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def as_float(tensor: Tensor, like: Tensor) -> Tensor:
    """`tensor` in `like`'s floating dtype and device (targets given as ints/bools become floats)."""
    return tensor.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)
