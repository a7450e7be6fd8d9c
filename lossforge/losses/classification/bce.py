"""Binary cross-entropy for binary and multilabel targets, with optional per-label `pos_weight`.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch  # noqa: F401  (the docstring examples run with this module's names)
import torch.nn.functional as F
from torch import Tensor

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import (
    Loss,
    Reduction,
    as_float,
    check_reduction,
    input_error,
    reduce,
    shape,
)
from lossforge.losses.classification.inputs import _as_list, _check_labels, _nonnegative_weights


def bce_loss(
    logits: Tensor,
    target: Tensor,
    *,
    pos_weight: float | Sequence[float] | Tensor | None = None,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Sigmoid + binary cross-entropy per label, summed over the labels of each sample.

    $$
    \ell_i = -\sum_k \big[ w_k\, y_{ik} \log \sigma(s_{ik}) + (1 - y_{ik}) \log \sigma(-s_{ik}) \big]
    $$

    computed with `logsigmoid` so large scores stay finite. `"mean"` averages the per-sample sums
    over samples; `torch.nn.BCEWithLogitsLoss` averages over all $N K$ elements, so its mean
    is ours divided by $K$.

    Args:
        logits: scores `(N,)` (binary) or `(N, K)` (multilabel).
        target: labels in {0, 1}, the same shape.
        pos_weight: $w$, a weight on the positive term: one number, or one per label `(K,)`.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample `(N,)` sums.
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> logits = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
        >>> labels = torch.tensor([[1, 1], [0, 1]])
        >>> bce_loss(logits, labels, reduction="none")
        tensor([0.8201, 1.0064])
    """
    check_reduction("bce", reduction)
    _check_labels("bce", logits, target, dims=(1, 2), scan=check_values)
    labels = as_float(target, logits)
    if pos_weight is not None:
        if not isinstance(pos_weight, Tensor):
            pos_weight = _nonnegative_weights("bce", "pos_weight", _as_list(pos_weight))
        num_labels = logits.shape[1] if logits.dim() == 2 else 1
        if pos_weight.numel() not in (1, num_labels):
            raise input_error(
                "bce", f"logits with one label per `pos_weight` entry ({pos_weight.numel()})", shape(logits)
            )
        pos_weight = pos_weight.to(device=logits.device, dtype=logits.dtype).reshape(-1)
    # torch's fused kernel computes exactly the formula above, stably (log1p(exp(−|s|))), in one pass;
    # only the reduction differs (torch's mean is over N·K elements), so it is done here from its sum.
    if reduction == "none" or logits.shape[0] == 0:
        values = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction="none")
        return reduce(values.sum(dim=1) if values.dim() == 2 else values, reduction)
    total = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction="sum")
    return total if reduction == "sum" else total / logits.shape[0]


class BCELoss(Loss):
    r"""Sigmoid + binary cross-entropy, registered as `bce`; summed over labels per sample.

    $$
    \ell_i = -\sum_k \big[ w_k\, y_{ik} \log \sigma(s_{ik}) + (1 - y_{ik}) \log \sigma(-s_{ik}) \big]
    $$

    `"mean"` is the mean over samples of these per-sample sums (`torch.nn.BCEWithLogitsLoss`
    divides by $N K$, i.e. gives ours divided by $K$).

    Args:
        pos_weight: weight $w$ of the positive term: one number, or a list with one per label.
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: scores `(N,)` or `(N, K)`; target: {0, 1} labels of the same shape.
        - output: a scalar, or the per-sample sums `(N,)` for `reduction="none"`.

    Examples:
        >>> round(BCELoss()(torch.zeros(1, 3), torch.tensor([[1, 0, 1]])).item(), 4)  # 3 log 2
        2.0794
    """

    name: ClassVar[str] = "bce"
    tasks: ClassVar[tuple[Task, ...]] = (Task.BINARY, Task.MULTILABEL)
    # One weight for every label's positives, a decade either side of the default None (= 1), so bce gets
    # the class-balance knob the focal and asymmetric losses have.
    search_space: ClassVar[dict[str, Prior]] = {"pos_weight": FloatRange(0.1, 10.0, log=True)}
    pos_weight: Tensor | None

    def __init__(self, *, pos_weight: float | list[float] | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        weight = None if pos_weight is None else _nonnegative_weights(self.name, "pos_weight", _as_list(pos_weight))
        self.register_buffer("pos_weight", weight)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return bce_loss(
            prediction, target, pos_weight=self.pos_weight, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        pos_weight = None if self.pos_weight is None else self.pos_weight.tolist()
        return f"pos_weight={pos_weight}, {super().extra_repr()}"
