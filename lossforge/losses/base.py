"""What every built-in loss shares: the task names, ``reduction``, and errors that teach.

A third-party loss does not need anything from here (the plugin contract is plain ``torch.nn.Module`` +
class attributes, see ``plugins/README.md``); lossforge's own losses use it so the contract is enforced
in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

#: The tasks a loss can declare in its ``tasks`` class attribute, and a dataset in its ``task``.
TASKS = ("regression", "binary", "multiclass", "multilabel", "metric")

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")


class LossInputError(ValueError):
    """Raised when a loss gets a prediction/target of the wrong shape, dtype or value range."""


def check_reduction(loss_name: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    """Return ``reduction`` if it is one of ``allowed``, else raise a ``ValueError`` naming the loss.

    >>> check_reduction("l1", "sum")
    'sum'
    """
    if reduction not in allowed:
        raise ValueError(f"{loss_name}: expected `reduction` in {list(allowed)}, got {reduction!r}")
    return reduction


def reduce(values: Tensor, reduction: str, weights: Tensor | None = None) -> Tensor:
    """Reduce per-element ``values`` by ``"mean"``, ``"sum"`` or ``"none"``.

    With ``weights`` the mean is the weighted mean :math:`\\sum_i w_i \\ell_i / \\sum_i w_i` and the sum is
    :math:`\\sum_i w_i \\ell_i`; ``"none"`` returns :math:`w_i \\ell_i`. An empty input reduces to ``0``
    (``"mean"`` of nothing is defined as 0 here, so a batch without valid tuples still backpropagates).

    >>> reduce(torch.tensor([1.0, 2.0, 3.0]), "mean")
    tensor(2.)
    >>> reduce(torch.tensor([1.0, 3.0]), "mean", weights=torch.tensor([3.0, 1.0]))
    tensor(1.5000)
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


_SCAN_TARGET_VALUES: ContextVar[bool] = ContextVar("lossforge_scan_target_values", default=True)


@contextmanager
def validated_targets() -> Iterator[None]:
    """Within this block, lossforge's losses trust the *values* of their targets and skip scanning them.

    Every loss checks dtypes and shapes on every call (free), and by default also scans target values:
    binary/multilabel labels in {0, 1} (or ±1), class indices in ``[0, C)``, probability rows that sum to
    1. Such a scan reads the whole target — for ``bce`` as much memory as the logits, 19–39 % of the
    call on a CPU — and on a GPU ends in a host-device sync that stalls the launch queue. When the
    targets come from data validated once up front (``DataSplits`` validates every split when it is
    built, and ``LossTask`` wraps its loss calls in this block), the scans repeat that work every batch.
    Shape and dtype errors are still raised inside the block; wrong *values* are not caught there.

    >>> from lossforge.losses.classification import bce_loss
    >>> bce_loss(torch.zeros(2, 1), torch.tensor([[0.5], [1.0]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lossforge.losses.base.LossInputError: bce: expected labels in {0, 1}, got values [0.5, 1.0]
    >>> with validated_targets():
    ...     bce_loss(torch.zeros(2, 1), torch.tensor([[0.0], [1.0]]))
    tensor(0.6931)
    """
    token = _SCAN_TARGET_VALUES.set(False)
    try:
        yield
    finally:
        _SCAN_TARGET_VALUES.reset(token)


def scan_target_values() -> bool:
    """False inside :func:`validated_targets`: whether a loss should scan its targets' values."""
    return _SCAN_TARGET_VALUES.get()


def input_error(loss_name: str, expected: str, got: str) -> LossInputError:
    """Build the error every loss raises for bad input: which loss, what it expected, what it got.

    >>> str(input_error("l1", "prediction and target of the same shape", "(4,) and (4, 2)"))
    'l1: expected prediction and target of the same shape, got (4,) and (4, 2)'
    """
    return LossInputError(f"{loss_name}: expected {expected}, got {got}")


def shape(tensor: Tensor) -> str:
    """Format a tensor's shape the way error messages print it: ``(8, 5)``."""
    return "(" + ", ".join(str(d) for d in tensor.shape) + ("," if tensor.dim() == 1 else "") + ")"


class Loss(nn.Module):
    """Thin base for lossforge's built-in losses: holds ``reduction`` and declares ``tasks``.

    Subclasses set ``name`` (the registry name, used in error messages) and ``tasks``, take keyword-only
    constructor parameters with defaults, and validate them eagerly.
    """

    name: ClassVar[str] = "loss"
    tasks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(self.name, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def as_float(tensor: Tensor, like: Tensor) -> Tensor:
    """``tensor`` in ``like``'s floating dtype and device (targets given as ints/bools become floats)."""
    return tensor.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)
