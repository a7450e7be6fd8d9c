"""Regression losses: L1, L2 and Huber, as pure functions and then as registered modules.

Every function takes ``prediction`` and ``target`` of the same shape, ``(N,)`` or ``(N, D)``. With ``D``
outputs the per-sample loss is the **sum** over the outputs (for L2 that is the squared Euclidean
distance), the same convention ``bce`` uses over labels. ``torch.nn``'s losses average over all ``N·D``
elements instead, so for ``D > 1`` their ``"mean"`` is ours divided by ``D``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from torch import Tensor
from torch.nn import functional as F

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import Loss, Reduction, as_float, check_reduction, input_error, shape


def _per_sample(values: Tensor) -> Tensor:
    """Elementwise losses ``(N,)`` or ``(N, D)`` → per-sample losses ``(N,)``."""
    return values.sum(dim=1) if values.dim() == 2 else values


def _reduce_elementwise(
    elementwise: Callable[..., Tensor], prediction: Tensor, target: Tensor, reduction: str, **options: float
) -> Tensor:
    """Reduce torch's fused elementwise loss (one kernel forward and back, no temporaries) our way: summed
    over the ``D`` outputs of a sample, then over samples (``"mean"``: divided by ``N``; 0 for no samples)."""
    if reduction == "none":
        return _per_sample(elementwise(prediction, target, reduction="none", **options))
    total = elementwise(prediction, target, reduction="sum", **options)
    return total / max(prediction.shape[0], 1) if reduction == "mean" else total


def _checked_target(loss_name: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Validate a regression pair and return the target in the prediction's dtype and device."""
    if not prediction.is_floating_point():
        raise input_error(loss_name, "a floating-point prediction", f"dtype {prediction.dtype}")
    if target.is_complex():
        raise input_error(loss_name, "a real-valued target", f"dtype {target.dtype}")
    # Equal shapes are required, not merely broadcastable ones: (N, 1) against (N,) silently broadcasts
    # to (N, N) in plain torch, the classic regression bug.
    if prediction.dim() not in (1, 2) or prediction.shape != target.shape:
        raise input_error(
            loss_name,
            "prediction and target of the same shape, (N,) or (N, D)",
            f"{shape(prediction)} and {shape(target)}",
        )
    return as_float(target, prediction)


def l1_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Absolute error, summed over outputs per sample.

    .. math::
        \ell_i = \sum_d |y_{id} - \hat y_{id}|

    Args:
        prediction: predictions :math:`\hat y`, ``(N,)`` or ``(N, D)``.
        target: targets :math:`y`, the same shape.
        reduction: ``"mean"`` over samples, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.

    Example:
        >>> import torch
        >>> l1_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 5.0]))
        tensor(2.)
    """
    check_reduction("l1", reduction)
    return _reduce_elementwise(F.l1_loss, prediction, _checked_target("l1", prediction, target), reduction)


def l2_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Squared error, summed over outputs per sample.

    .. math::
        \ell_i = \sum_d (y_{id} - \hat y_{id})^2

    Args:
        prediction: predictions :math:`\hat y`, ``(N,)`` or ``(N, D)``.
        target: targets :math:`y`, the same shape.
        reduction: ``"mean"`` over samples, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.

    Example:
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
    r"""Huber loss: quadratic for small residuals, linear (slope :math:`\delta`) for large ones.

    .. math::
        \ell_i = \sum_d h_\delta(y_{id} - \hat y_{id}), \qquad
        h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
                                    \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    ``torch.nn.SmoothL1Loss(beta=b)`` is this loss divided by ``b``: ``huber(delta=b) / b``; for
    ``delta = 1`` they coincide.

    Args:
        prediction: predictions :math:`\hat y`, ``(N,)`` or ``(N, D)``.
        target: targets :math:`y`, the same shape.
        delta: where the quadratic part turns linear, ``> 0``.
        reduction: ``"mean"`` over samples, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.

    Example:
        >>> import torch
        >>> huber_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0]), reduction="none")
        tensor([0.1250, 2.5000])
    """
    delta = _check_delta(delta)
    check_reduction("huber", reduction)
    target = _checked_target("huber", prediction, target)
    return _reduce_elementwise(F.huber_loss, prediction, target, reduction, delta=delta)


class L1Loss(Loss):
    r"""Mean absolute error, registered as ``l1``; robust to outliers (its constant minimiser is the median).

    .. math::
        \ell_i = \sum_d |y_{id} - \hat y_{id}|

    Args:
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"``.

    Shape:
        - prediction: ``(N,)`` or ``(N, D)``; target: the same shape.
        - output: a scalar, or ``(N,)`` (the per-sample sum over ``D``) for ``reduction="none"``.

    Example:
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
    r"""Squared error, registered as ``l2``; its constant minimiser is the mean.

    Also usable for binary classification on :math:`\pm 1` labels, as in the lecture: the class attribute
    ``binary_target_encoding = "plus_minus_one"`` tells the training pipeline to hand it :math:`\pm 1`
    targets instead of 0/1.

    .. math::
        \ell_i = \sum_d (y_{id} - \hat y_{id})^2

    Args:
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"``.

    Shape:
        - prediction: ``(N,)`` or ``(N, D)``; target: the same shape.
        - output: a scalar, or ``(N,)`` (the per-sample sum over ``D``) for ``reduction="none"``.

    Example:
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
    r"""Huber loss, registered as ``huber``: L2 near zero, L1 in the tails.

    .. math::
        h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
                                    \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}

    ``torch.nn.SmoothL1Loss(beta=b)`` equals ``HuberLoss(delta=b)`` divided by ``b``.

    Args:
        delta: the residual size where quadratic turns linear, ``> 0``.
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"``.

    Shape:
        - prediction: ``(N,)`` or ``(N, D)``; target: the same shape.
        - output: a scalar, or ``(N,)`` (the per-sample sum over ``D``) for ``reduction="none"``.

    Example:
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
