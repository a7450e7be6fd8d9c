"""Input checks shared by the classification losses: labels and logits of the right shape and values, and the
parameters (margins, `gamma`, label smoothing, class weights) validated eagerly, with errors that name the loss.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lossforge.losses.base import (
    input_error,
    reduce,
    shape,
)


def _check_labels(
    loss_name: str,
    scores: Tensor,
    target: Tensor,
    *,
    dims: tuple[int, ...] = (1,),
    plus_minus_one: bool = False,
    scan: bool = True,
) -> None:
    """Binary/multilabel input: floating scores, a target of the same shape, labels in {0, 1} (or ±1).
    `scan=False` skips the scan of the label values (dtype and shape are still checked)."""
    if not scores.is_floating_point():
        raise input_error(loss_name, "floating-point scores (logits)", f"dtype {scores.dtype}")
    if target.is_complex():
        raise input_error(loss_name, "real-valued labels", f"dtype {target.dtype}")
    if scores.dim() not in dims or scores.shape != target.shape:
        expected = " or ".join(("scores (N,)", "scores (N, K)")[d - 1] for d in dims)
        raise input_error(loss_name, f"{expected} and labels of the same shape", f"{shape(scores)} and {shape(target)}")
    if target.dtype == torch.bool or not scan:
        return  # 0 or 1 by construction, or validated once up front: nothing to scan
    # The scan is memory-bound (two comparisons over the whole target), so the in-place `or` saves one
    # temporary; the ±1 scan runs only when the {0, 1} one fails.
    valid = target.eq(0).logical_or_(target.eq(1)).all()
    if plus_minus_one and not valid:
        valid = target.eq(-1).logical_or_(target.eq(1)).all()
    if not valid:  # the host sync: a label outside the encoding is a data bug worth stopping for
        allowed = "either all in {0, 1} or all in {-1, 1}" if plus_minus_one else "in {0, 1}"
        found = torch.unique(target.detach())[:6].tolist()
        raise input_error(loss_name, f"labels {allowed}", f"values {found}")


def _check_multiclass(
    loss_name: str, logits: Tensor, target: Tensor, *, soft: bool, scan: bool = True
) -> tuple[bool, Tensor]:
    """Validate multiclass input; return (whether the targets are probability rows, the targets), with
    class indices as int64, which `gather` and `one_hot` need. `scan=False` skips the scans of the
    target values (index range, probability rows); dtypes and shapes are still checked."""
    if not logits.is_floating_point():
        raise input_error(loss_name, "floating-point logits (N, C)", f"dtype {logits.dtype}")
    targets_expected = "class indices (N,)" + (" or probabilities (N, C)" if soft else "")
    if logits.dim() != 2:
        raise input_error(loss_name, f"logits (N, C) and {targets_expected}", f"{shape(logits)} and {shape(target)}")
    num_samples, num_classes = logits.shape
    if target.dim() == 1 and target.shape[0] == num_samples:
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise input_error(loss_name, "class indices of an integer dtype", f"dtype {target.dtype}")
        if not scan:
            return False, target.long()
        # One pass and one host sync for the range check (a GPU would otherwise assert inside the kernel).
        lowest, highest = torch.aminmax(target) if num_samples else (target.new_zeros(()), target.new_zeros(()))
        if (lowest < 0) | (highest >= num_classes):
            found = [int(lowest), int(highest)]
            raise input_error(loss_name, f"class indices in [0, {num_classes - 1}]", f"range {found}")
        return False, target.long()
    if soft and target.shape == logits.shape:
        if not target.is_floating_point():
            raise input_error(loss_name, "floating-point probability targets (N, C)", f"dtype {target.dtype}")
        if scan and ((target < 0).any() | ((target.sum(dim=1) - 1).abs() > 1e-3).any()):
            raise input_error(loss_name, "probability rows: non-negative, summing to 1", "other values")
        return True, target
    raise input_error(loss_name, f"logits (N, C) and {targets_expected}", f"{shape(logits)} and {shape(target)}")


def _check_margin(loss_name: str, margin: float) -> float:
    if not margin >= 0:  # also rejects NaN
        raise ValueError(f"{loss_name}: expected `margin` >= 0, got {margin}")
    return float(margin)


def _check_gamma(gamma: float) -> float:
    if not gamma >= 0:
        raise ValueError(f"focal: expected `gamma` >= 0, got {gamma}")
    return float(gamma)


def _check_label_smoothing(label_smoothing: float) -> float:
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"cross_entropy: expected `label_smoothing` in [0, 1), got {label_smoothing}")
    return float(label_smoothing)


def _nonnegative_weights(loss_name: str, parameter: str, values: Sequence[float]) -> Tensor:
    """A list of per-class (or per-label) weights as a tensor, after checking it is usable."""
    try:
        if isinstance(values, str):
            raise TypeError
        numbers = [float(value) for value in values]
    except (TypeError, ValueError):
        raise ValueError(f"{loss_name}: expected `{parameter}` to be a list of numbers, got {values!r}") from None
    if not numbers or any(not value >= 0 for value in numbers):  # `not >=` also rejects NaN
        raise ValueError(f"{loss_name}: expected `{parameter}` to be non-empty and >= 0, got {numbers}")
    return torch.tensor(numbers, dtype=torch.get_default_dtype())


def _check_alpha(alpha: float | Sequence[float] | Tensor | None) -> Tensor | None:
    """`alpha` as a 0-d tensor (binary α), a 1-d tensor (per-class weights) or None."""
    if alpha is None or isinstance(alpha, Tensor):
        return alpha
    if isinstance(alpha, int | float):
        if not 0 <= alpha <= 1:
            raise ValueError(f"focal: expected a float `alpha` in [0, 1], got {alpha}")
        return torch.tensor(float(alpha), dtype=torch.get_default_dtype())
    return _nonnegative_weights("focal", "alpha", alpha)


def _reduce_weighted(weighted_values: Tensor, weight_mass: Tensor, reduction: str) -> Tensor:
    """Reduce per-sample `w_i ℓ_i`: `"mean"` is `Σ w_i ℓ_i / Σ w_i`.

    A batch whose weights are all zero reduces to 0 rather than 0/0 = NaN, so one unlucky batch cannot
    poison training.
    """
    if reduction != "mean":
        return reduce(weighted_values, reduction)
    total = weight_mass.sum().clamp_min(torch.finfo(weight_mass.dtype).tiny)
    return weighted_values.sum() / total


def _true_class_mask(target: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(target, num_classes).bool()  # (N, C)


def _as_list(value: float | Sequence[float]) -> Sequence[float]:
    return [value] if isinstance(value, int | float) else value
