"""The probe: a loss called with `reduction="none"` on a batch of points along its axis, and its derivative from
`torch.autograd.grad` ([probe][lossforge.evaluation.loss_figures.probing.probe]). Numbers only; nothing is drawn.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lossforge.contract import Task, loss_traits
from lossforge.evaluation.loss_figures.axes import (
    ANCHOR_TO_POSITIVE,
    PROBE_PROXIES,
    _cosine,
    _proxies,
    _triplets,
    axis_for,
    has_negative,
    plot_task,
)
from lossforge.tasks import spec_for


def _per_sample(loss: Any) -> Any:
    """A CPU copy of `loss` that returns per-sample values, leaving the caller's (training) loss as it is."""
    probe_loss = copy.deepcopy(loss)
    if isinstance(probe_loss, torch.nn.Module):
        probe_loss = probe_loss.cpu()
    if getattr(probe_loss, "reduction", "none") != "none":
        probe_loss.reduction = "none"
    return probe_loss


def _supervised(task: Task, classes: int = 2) -> Callable[[Tensor, str, bool], tuple[Tensor, Tensor]]:
    def regression(x: Tensor, encoding: str, negative: bool) -> tuple[Tensor, Tensor]:
        return x, torch.zeros_like(x)  # prediction r, target 0

    def margin(x: Tensor, encoding: str, negative: bool) -> tuple[Tensor, Tensor]:
        labels = torch.zeros_like(x) if negative else torch.ones_like(x)
        target = spec_for(task).loss_target(labels, encoding=encoding).to(x.dtype)  # 0/1 or ±1
        scores = -x if negative else x  # so that y·f is x for either label
        if task is Task.MULTILABEL:
            return scores[:, None], target[:, None]  # (N, 1): one label
        return scores, target

    def true_class(x: Tensor, encoding: str, negative: bool) -> tuple[Tensor, Tensor]:
        # Class 0 is true, the other classes' logits 0: softmax(...)[0] = x when its logit is
        # log(x (C - 1) / (1 - x)) — for C = 2, logit(x).
        true_logit = torch.logit(x) + math.log(classes - 1)
        others = torch.zeros(x.shape[0], classes - 1, dtype=x.dtype)
        return torch.cat([true_logit[:, None], others], dim=1), torch.zeros(x.shape[0], dtype=torch.long)  # (N, C)

    return {Task.REGRESSION: regression, Task.MULTICLASS: true_class}.get(task, margin)


def _embedding(offset: Tensor, cosine: bool) -> Tensor:
    """A point at `offset` from the origin (1-D), or the unit vector at angle `offset` (2-D)."""
    if cosine:
        return torch.stack([torch.cos(offset), torch.sin(offset)])  # (2,)
    return offset[None]  # (1,)


def _proxy_value(loss: Any, x: Tensor) -> Tensor:
    """The loss of one unit embedding of class 0 at angle `x` (0-d) from its proxy (`PROBE_PROXIES`)."""
    return loss(_embedding(x, cosine=True)[None], torch.tensor([0]), None).sum()  # (1, 2)


def _metric_value(loss: Any, x: Tensor, *, cosine: bool, triplet: bool, negative: bool) -> Tensor:
    """The loss of one tiny batch built at `x` (0-d): the sum of what `reduction="none"` returns
    (for one pair or triplet, its loss; a per-anchor loss sums over the batch's anchors)."""
    zero, empty = torch.zeros_like(x), torch.zeros(0, dtype=torch.long)
    indices: tuple[Tensor, ...]
    first, second, third = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    if triplet:
        anchor_to_positive = torch.full_like(x, ANCHOR_TO_POSITIVE)
        points = [_embedding(zero, cosine), _embedding(anchor_to_positive, cosine), _embedding(-x, cosine)]
        labels, indices = torch.tensor([0, 0, 1]), (first, second, third)
    else:
        points = [_embedding(zero, cosine), _embedding(x, cosine)]
        labels = torch.tensor([0, 1]) if negative else torch.tensor([0, 0])
        indices = (empty, empty, first, second) if negative else (first, second, empty, empty)
    return loss(torch.stack(points), labels, indices).sum()  # points: (2 or 3, D)


def probe(
    loss: Any,
    task: str,
    *,
    negative: bool = False,
    points: int = 201,
    low: float | None = None,
    high: float | None = None,
    classes: int = 2,
) -> tuple[Tensor, Tensor, Tensor]:
    """`(x, values, derivatives)` of `loss` along its axis for `task`
    ([axis_for][lossforge.evaluation.loss_figures.axes.axis_for]), float64.

    The loss is called on a batch of points along the axis with `reduction="none"` (on a copy: the
    given module is not changed) and differentiated with `torch.autograd.grad` with respect to the axis
    variable.

    Args:
        loss: a loss module (any reduction); it must declare `task`.
        task: `"regression"`, `"binary"`, `"multiclass"`, `"multilabel"` or `"metric"`.
        negative: a negative example (binary, multilabel) or a negative pair (metric pair losses); see
            [has_negative][lossforge.evaluation.loss_figures.axes.has_negative].
        points: how many points along the axis.
        low: where the axis starts; default: the axis's own.
        high: where the axis ends; default: the axis's own.
        classes: multiclass: how many classes the logits have (a loss prepared for C classes needs C);
            the curve against p_t is the same for any C for a loss that treats wrong classes alike.

    Returns:
        `x`, the loss at each point, and its derivative $d\\ell/dx$, each `(points,)`.

    Examples:
        >>> from lossforge.losses.regression import L2Loss
        >>> x, values, derivatives = probe(L2Loss(), "regression", points=3, low=-1.0, high=1.0)
        >>> values.tolist(), derivatives.tolist()
        ([1.0, 0.0, 1.0], [-2.0, 0.0, 2.0])
    """
    task = plot_task(loss, task)
    if negative and not has_negative(loss, task):
        raise ValueError(f"loss {loss_traits(loss).name!r} has no negative example or pair to probe for {task}.")
    axis = axis_for(loss, task)
    low, high = axis.low if low is None else low, axis.high if high is None else high
    x = torch.linspace(low, high, points, dtype=torch.float64, requires_grad=True)  # (N,)
    probe_loss = _per_sample(loss)
    if task is Task.METRIC and _proxies(loss):
        probe_loss.proxies = torch.nn.Parameter(torch.tensor(PROBE_PROXIES, dtype=torch.float64))  # (2, 2)
        values = torch.stack([_proxy_value(probe_loss, point) for point in x])  # (N,)
    elif task is Task.METRIC:
        options = {"cosine": _cosine(loss), "triplet": _triplets(loss), "negative": negative}
        values = torch.stack([_metric_value(probe_loss, point, **options) for point in x])  # (N,)
    else:
        prediction, target = _supervised(task, classes)(x, loss_traits(loss).binary_target_encoding, negative)
        values = probe_loss(prediction, target)
        if values.shape != x.shape:
            raise ValueError(
                f"loss {loss_traits(loss).name!r} with reduction='none' should return one value per sample, "
                f"{tuple(x.shape)}, for {tuple(prediction.shape)} predictions; got {tuple(values.shape)}."
            )
    if values.requires_grad:  # each value depends on its own point only, so one backward gives every dℓ/dx
        (derivatives,) = torch.autograd.grad(values.sum(), x, allow_unused=True, materialize_grads=True)
    else:  # a loss that is constant along the axis
        derivatives = torch.zeros_like(x)
    return x.detach(), values.detach().to(torch.float64), derivatives.detach()
