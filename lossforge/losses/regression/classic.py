r"""The classic three: L1 (robust to outliers, the median), L2 (the mean) and Huber (L2 near zero, L1 in
the tails), as pure functions and then as registered modules.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor
from torch.nn import functional as F

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import Loss, Reduction, check_reduction
from lossforge.losses.regression.inputs import _checked_target, _reduce_elementwise


def l1_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Absolute error, summed over outputs per sample.

    $$
    \ell_i = \sum_d |y_{id} - \hat y_{id}|
    $$

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> import torch
        >>> l1_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 5.0]))
        tensor(2.)
    """
    check_reduction("l1", reduction)
    return _reduce_elementwise(F.l1_loss, prediction, _checked_target("l1", prediction, target), reduction)


def l2_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Squared error, summed over outputs per sample.

    $$
    \ell_i = \sum_d (y_{id} - \hat y_{id})^2
    $$

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> import torch
        >>> l2_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 5.0]))
        tensor(5.)
    """
    check_reduction("l2", reduction)
    return _reduce_elementwise(F.mse_loss, prediction, _checked_target("l2", prediction, target), reduction)


def _check_delta(delta: float) -> float:
    if not delta > 0:  # also rejects NaN
        raise ValueError(f"huber: expected `delta` > 0, got {delta}")
    return float(delta)


def huber_loss(prediction: Tensor, target: Tensor, *, delta: float = 1.0, reduction: Reduction = "mean") -> Tensor:
    r"""Huber loss: quadratic for small residuals, linear (slope $\delta$) for large ones.

    $$
    \ell_i = \sum_d h_\delta(y_{id} - \hat y_{id}), \qquad
    h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
                                \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}
    $$

    `torch.nn.SmoothL1Loss(beta=b)` is this loss divided by `b`: `huber(delta=b) / b`; for
    `delta = 1` they coincide.

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        delta: where the quadratic part turns linear, `> 0`.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> import torch
        >>> huber_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0]), reduction="none")
        tensor([0.1250, 2.5000])
    """
    delta = _check_delta(delta)
    check_reduction("huber", reduction)
    target = _checked_target("huber", prediction, target)
    return _reduce_elementwise(F.huber_loss, prediction, target, reduction, delta=delta)


class L1Loss(Loss):
    r"""Mean absolute error, registered as `l1`; robust to outliers (its constant minimiser is the median).

    $$
    \ell_i = \sum_d |y_{id} - \hat y_{id}|
    $$

    Args:
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> import torch
        >>> L1Loss()(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 3.0]]))
        tensor(3.)
    """

    name: ClassVar[str] = "l1"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return l1_loss(prediction, target, reduction=self.reduction)


class L2Loss(Loss):
    r"""Squared error, registered as `l2`; its constant minimiser is the mean.

    Also usable for binary classification on $\pm 1$ labels, as in the lecture: the class attribute
    `binary_target_encoding = "plus_minus_one"` tells the training pipeline to hand it $\pm 1$
    targets instead of 0/1.

    $$
    \ell_i = \sum_d (y_{id} - \hat y_{id})^2
    $$

    Args:
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> import torch
        >>> L2Loss(reduction="none")(torch.tensor([0.5, -2.0]), torch.tensor([1.0, -1.0]))
        tensor([0.2500, 1.0000])
    """

    name: ClassVar[str] = "l2"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION, Task.BINARY)
    binary_target_encoding: ClassVar[str] = "plus_minus_one"

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return l2_loss(prediction, target, reduction=self.reduction)


class HuberLoss(Loss):
    r"""Huber loss, registered as `huber`: L2 near zero, L1 in the tails.

    $$
    h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
                                \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}
    $$

    `torch.nn.SmoothL1Loss(beta=b)` equals `HuberLoss(delta=b)` divided by `b`.

    Args:
        delta: the residual size where quadratic turns linear, `> 0`.
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> import torch
        >>> HuberLoss(delta=2.0)(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 4.0]))
        tensor(3.2500)
    """

    name: ClassVar[str] = "huber"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)
    # delta is a residual in units of the standardised targets: from nearly L1 (0.05) to L2 on all but the
    # far tails (10); what matters is its order of magnitude, hence log-uniform.
    search_space: ClassVar[dict[str, Prior]] = {"delta": FloatRange(0.05, 10.0, log=True)}

    def __init__(self, *, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.delta = _check_delta(delta)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return huber_loss(prediction, target, delta=self.delta, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, {super().extra_repr()}"
