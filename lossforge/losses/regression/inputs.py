"""What the regression losses share: the check of a prediction and target pair, a parameter's positivity
check, and the reduction of elementwise values (summed over a sample's `D` outputs, then over samples).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from lossforge.losses.base import as_float, input_error, reduce, shape


def _per_sample(values: Tensor) -> Tensor:
    """Elementwise losses `(N,)` or `(N, D)` → per-sample losses `(N,)`."""
    return values.sum(dim=1) if values.dim() == 2 else values


def _reduce_elementwise(
    elementwise: Callable[..., Tensor], prediction: Tensor, target: Tensor, reduction: str, **options: float
) -> Tensor:
    """Reduce torch's fused elementwise loss (one kernel forward and back, no temporaries) our way: summed
    over the `D` outputs of a sample, then over samples (`"mean"`: divided by `N`; 0 for no samples)."""
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


def _check_positive(loss_name: str, parameter: str, value: float, meaning: str) -> float:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{loss_name}: expected `{parameter}` > 0 ({meaning}), got {value}")
    return float(value)


def _reduce_values(values: Tensor, reduction: str) -> Tensor:
    """Elementwise values `(N,)` or `(N, D)` → summed over `D` per sample, then reduced over samples."""
    return reduce(_per_sample(values), reduction)
