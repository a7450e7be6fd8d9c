"""Margin losses: the binary hinge and the multiclass (Crammer–Singer) hinge.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

from typing import ClassVar

import torch  # noqa: F401  (the docstring examples run with this module's names)
from torch import Tensor

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import (
    Loss,
    Reduction,
    as_float,
    check_reduction,
    reduce,
)
from lossforge.losses.classification.inputs import _check_labels, _check_margin, _check_multiclass, _true_class_mask


def hinge_loss(
    scores: Tensor, target: Tensor, *, margin: float = 1.0, reduction: Reduction = "mean", check_values: bool = True
) -> Tensor:
    r"""Binary hinge loss on raw scores, labels given as ±1 or 0/1 (0 is read as −1).

    $$
    \ell_i = \max(0,\; m - y_i f(x_i)), \qquad y_i \in \{-1, +1\}
    $$

    Args:
        scores: scores $f(x)$, `(N,)`.
        target: labels `(N,)`, all in {−1, 1} or all in {0, 1}.
        margin: $m \ge 0$.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample `(N,)` values.
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> hinge_loss(torch.tensor([2.0, 0.5, 0.5]), torch.tensor([1, 1, 0]), reduction="none")
        tensor([0.0000, 0.5000, 1.5000])
    """
    margin = _check_margin("hinge", margin)
    check_reduction("hinge", reduction)
    _check_labels("hinge", scores, target, plus_minus_one=True, scan=check_values)
    signs = 2 * as_float(target > 0, scores) - 1
    return reduce((margin - signs * scores).clamp(min=0), reduction)


def multiclass_hinge_loss(
    logits: Tensor,
    target: Tensor,
    *,
    margin: float = 1.0,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Weston–Watkins multiclass hinge loss: one hinge per wrong class, summed.

    $$
    \ell_i = \sum_{j \ne y_i} \max(0,\; m - (s_{i y_i} - s_{ij}))
    $$

    `torch.nn.MultiMarginLoss` computes the same sum divided by the number of classes $C$.

    Args:
        logits: class scores $s$, `(N, C)`.
        target: class indices `(N,)`.
        margin: $m \ge 0$.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample `(N,)` values.
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> multiclass_hinge_loss(torch.tensor([[2.0, 1.5, -1.0]]), torch.tensor([0]))
        tensor(0.5000)
    """
    margin = _check_margin("multiclass_hinge", margin)
    check_reduction("multiclass_hinge", reduction)
    _, target = _check_multiclass("multiclass_hinge", logits, target, soft=False, scan=check_values)
    true_score = logits.gather(1, target[:, None])  # (N, 1)
    hinges = (margin - true_score + logits).clamp(min=0)  # (N, C)
    values = hinges.masked_fill(_true_class_mask(target, logits.shape[1]), 0.0).sum(dim=1)
    return reduce(values, reduction)


class HingeLoss(Loss):
    r"""Binary hinge loss, registered as `hinge`: $\max(0, m - y f(x))$, $y \in \{-1, 1\}$.

    Labels may be given as ±1 or 0/1 (0 is read as −1).

    Args:
        margin: $m \ge 0$.
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: scores `(N,)`; target: labels `(N,)`.
        - output: a scalar, or `(N,)` for `reduction="none"`.

    Examples:
        >>> HingeLoss()(torch.tensor([0.2, -3.0]), torch.tensor([-1, -1]))
        tensor(0.6000)
    """

    name: ClassVar[str] = "hinge"
    tasks: ClassVar[tuple[Task, ...]] = (Task.BINARY,)
    # The margin sets the scores' scale against weight decay, so its order of magnitude is what matters.
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = _check_margin(self.name, margin)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return hinge_loss(
            prediction, target, margin=self.margin, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, {super().extra_repr()}"


class MulticlassHingeLoss(Loss):
    r"""Weston–Watkins multiclass hinge, registered as `multiclass_hinge`.

    $$
    \ell_i = \sum_{j \ne y_i} \max(0,\; m - (s_{i y_i} - s_{ij}))
    $$

    A sum over the wrong classes; `torch.nn.MultiMarginLoss` divides the same sum by $C$.

    Args:
        margin: $m \ge 0$.
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: logits `(N, C)`; target: class indices `(N,)`.
        - output: a scalar, or `(N,)` for `reduction="none"`.

    Examples:
        >>> MulticlassHingeLoss()(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([0]))
        tensor(1.)
    """

    name: ClassVar[str] = "multiclass_hinge"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS,)
    # As for `hinge`: the margin sets the logits' scale against weight decay; log-uniform around 1.
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = _check_margin(self.name, margin)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return multiclass_hinge_loss(
            prediction, target, margin=self.margin, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, {super().extra_repr()}"
