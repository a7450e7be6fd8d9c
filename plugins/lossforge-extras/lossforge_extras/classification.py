"""Classification losses: Poly-1 cross-entropy (multiclass) and the asymmetric loss (multilabel, binary).

Pure functions first, then the registered modules. Both work from logits: `log_softmax` / `logsigmoid`
keep large scores finite. Input conventions, the same as lossforge's built-ins:

* multiclass: logits `(N, C)` and class indices `(N,)` of an integer dtype;
* multilabel: logits and {0, 1} targets `(N, K)`; binary: scores and {0, 1} targets `(N,)`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossforge_extras._common import InputError, check_at_least, check_reduction, reduce, shape

# -- input validation ------------------------------------------------------------------------------


def _check_multiclass(loss_name: str, logits: Tensor, target: Tensor, *, scan: bool = True) -> Tensor:
    """Floating logits `(N, C)`, integer class indices `(N,)` in range; return the indices as int64.
    `scan=False` skips the range scan of the values (lossforge validated its data up front)."""
    if not logits.is_floating_point() or logits.dim() != 2 or target.dim() != 1 or target.shape[0] != logits.shape[0]:
        raise InputError(
            f"{loss_name}: expected floating logits (N, C) and class indices (N,), got "
            f"{shape(logits)} {logits.dtype} and {shape(target)} {target.dtype}"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise InputError(f"{loss_name}: expected class indices of an integer dtype, got {target.dtype}")
    num_classes = logits.shape[1]
    if scan and target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise InputError(
            f"{loss_name}: expected class indices in [0, {num_classes - 1}], "
            f"got range [{int(target.min())}, {int(target.max())}]"
        )
    return target.long()


def _check_labels(loss_name: str, scores: Tensor, target: Tensor, *, scan: bool = True) -> Tensor:
    """Floating scores `(N,)` or `(N, K)`, {0, 1} labels of the same shape; return them in the scores' dtype.
    `scan=False` skips the scan of the label values."""
    if not scores.is_floating_point() or scores.dim() not in (1, 2) or scores.shape != target.shape:
        raise InputError(
            f"{loss_name}: expected floating scores (N,) or (N, K) and labels of the same shape, got "
            f"{shape(scores)} {scores.dtype} and {shape(target)} {target.dtype}"
        )
    if target.is_complex():
        raise InputError(f"{loss_name}: expected real-valued labels, got {target.dtype}")
    if scan and not ((target == 0) | (target == 1)).all():
        found = torch.unique(target.detach())[:6].tolist()
        raise InputError(f"{loss_name}: expected labels in {{0, 1}}, got values {found}")
    return target.to(scores.dtype)


# -- Poly-1 cross-entropy --------------------------------------------------------------------------


def poly1_cross_entropy(
    logits: Tensor, target: Tensor, *, epsilon: float = 1.0, reduction: str = "mean", check_values: bool = True
) -> Tensor:
    r"""Poly-1 cross-entropy (Leng et al., "PolyLoss", ICLR 2022): cross-entropy plus a linear term in
    $1 - p_t$.

    $$
    \ell_i = -\log p_{t,i} + \varepsilon\, (1 - p_{t,i}), \qquad p_{t,i} = \operatorname{softmax}(s_i)_{y_i}
    $$

    Cross-entropy's Taylor expansion in $1 - p_t$ has the coefficient 1 on every term;
    $\varepsilon$ raises (or, down to $-1$, lowers) the first one, which dominates the gradient
    once $p_t$ is large. $\varepsilon = 0$ is cross-entropy exactly; below $-1$ the loss
    would no longer decrease as $p_t \to 1$, so that is refused.

    Args:
        logits: class scores $s$, `(N, C)`.
        target: class indices $y$, `(N,)`.
        epsilon: $\varepsilon \ge -1$.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample values `(N,)`.
        check_values: scan the class indices' range (`False` for data validated up front).

    Examples:
        >>> round(poly1_cross_entropy(torch.zeros(1, 2), torch.tensor([0]), epsilon=1.0).item(), 4)  # log 2 + 1/2
        1.1931
    """
    epsilon = check_at_least("poly1_cross_entropy", "epsilon", epsilon, -1.0)
    check_reduction("poly1_cross_entropy", reduction)
    target = _check_multiclass("poly1_cross_entropy", logits, target, scan=check_values)
    log_pt = logits.log_softmax(dim=1).gather(1, target[:, None]).squeeze(1)  # (N,)
    return reduce(-log_pt + epsilon * (1 - log_pt.exp()), reduction)


class Poly1CrossEntropyLoss(nn.Module):
    r"""Poly-1 cross-entropy, registered as `poly1_cross_entropy` (see `poly1_cross_entropy`).

    $$
    \ell_i = -\log p_{t,i} + \varepsilon\, (1 - p_{t,i})
    $$

    Args:
        epsilon: $\varepsilon \ge -1$; 0 is cross-entropy, the paper's Poly-1 default is 1.
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: logits `(N, C)`; target: class indices `(N,)`.
        - output: a scalar, or `(N,)` for `reduction="none"`.

    Examples:
        >>> loss = Poly1CrossEntropyLoss(epsilon=2.0)
        >>> round(loss(torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])).item(), 4)
        0.6656
    """

    tasks: ClassVar[tuple[str, ...]] = ("multiclass",)
    # What lossforge's benchmark may tune, as plain data: from -1 (the lowest the loss allows) to 5, around
    # the paper's Poly-1 default of 1 (2 on ImageNet, the `poly1_imagenet` preset); 0 is cross-entropy.
    search_space: ClassVar[dict[str, dict[str, float]]] = {"epsilon": {"low": -1.0, "high": 5.0}}

    def __init__(self, *, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.epsilon = check_at_least("poly1_cross_entropy", "epsilon", epsilon, -1.0)
        self.reduction = check_reduction("poly1_cross_entropy", reduction)
        self.scan_targets = True  # lossforge sets it False when it trains on data it validated up front

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return poly1_cross_entropy(
            prediction, target, epsilon=self.epsilon, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, reduction={self.reduction!r}"


# -- asymmetric loss -------------------------------------------------------------------------------


def asymmetric_loss(
    scores: Tensor,
    target: Tensor,
    *,
    gamma_positive: float = 0.0,
    gamma_negative: float = 4.0,
    clip: float = 0.05,
    reduction: str = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Asymmetric loss (Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021),
    summed over labels per sample.

    $$
    \ell_i = -\sum_k \Big[ y_{ik}\, (1 - p_{ik})^{\gamma_+} \log p_{ik}
             + (1 - y_{ik})\, p_{m,ik}^{\gamma_-} \log (1 - p_{m,ik}) \Big],
    \qquad p = \sigma(s), \quad p_m = \max(p - m, 0)
    $$

    Positives and negatives get their own focusing exponents ($\gamma_- > \gamma_+$ down-weights the
    many easy negatives of a multi-label problem), and the probability margin $m$ (`clip`) drops a
    negative's loss to exactly 0 once $p \le m$, discarding the easiest negatives and possibly
    mislabelled ones. With $\gamma_\pm = 0$ and $m = 0$ this is binary cross-entropy summed over
    labels. Values and gradients stay finite for any score (logs come from `logsigmoid`).

    Args:
        scores: logits $s$, `(N, K)` (multilabel) or `(N,)` (binary).
        target: labels $y \in \{0, 1\}$, the shape of `scores`.
        gamma_positive: $\gamma_+ \ge 0$.
        gamma_negative: $\gamma_- \ge 0$.
        clip: the probability margin $m \in [0, 1)$.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample sums `(N,)`.
        check_values: scan the label values (`False` for data validated up front).

    Examples:
        >>> scores, labels = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])
        >>> round(asymmetric_loss(scores, labels).item(), 4)  # log 2 + 0.45^4 log(1 / 0.55)
        0.7177
        >>> round(asymmetric_loss(scores, labels, gamma_negative=0.0, clip=0.0).item(), 4)  # BCE: 2 log 2
        1.3863
    """
    gamma_positive = check_at_least("asymmetric", "gamma_positive", gamma_positive, 0.0)
    gamma_negative = check_at_least("asymmetric", "gamma_negative", gamma_negative, 0.0)
    clip = _check_clip(clip)
    check_reduction("asymmetric", reduction)
    target = _check_labels("asymmetric", scores, target, scan=check_values)
    # Positives: (1 - p)^γ+ log p, with (1 - p)^γ+ = exp(γ+ log σ(-s)): finite even where σ(-s) underflows.
    positive = (gamma_positive * F.logsigmoid(-scores)).exp() * F.logsigmoid(scores)
    if clip == 0:
        negative = (gamma_negative * F.logsigmoid(scores)).exp() * F.logsigmoid(-scores)
    else:
        shifted = (torch.sigmoid(scores) - clip).clamp(min=0)  # p_m
        # p_m^γ- where p_m > 0, else 0 (its loss is log 1 = 0 anyway); the clamp keeps pow's gradient finite.
        tiny = torch.finfo(scores.dtype).tiny
        weight = torch.where(shifted > 0, shifted.clamp(min=tiny).pow(gamma_negative), 0.0)
        negative = weight * torch.log((torch.sigmoid(-scores) + clip).clamp(max=1))  # log(1 - p_m) >= log m
    values = -(target * positive + (1 - target) * negative)
    return reduce(values.sum(dim=1) if values.dim() == 2 else values, reduction)


def _check_clip(clip: float) -> float:
    clip = check_at_least("asymmetric", "clip", clip, 0.0)
    if not clip < 1:
        raise ValueError(f"asymmetric: expected `clip` in [0, 1), got {clip}")
    return clip


class AsymmetricLoss(nn.Module):
    r"""Asymmetric loss (ASL), registered as `asymmetric` (see `asymmetric_loss`).

    $$
    \ell_i = -\sum_k \Big[ y_{ik} (1 - p_{ik})^{\gamma_+} \log p_{ik}
             + (1 - y_{ik})\, p_{m,ik}^{\gamma_-} \log (1 - p_{m,ik}) \Big], \qquad p_m = \max(p - m, 0)
    $$

    The defaults are the paper's recommended setting: $\gamma_+ = 0$, $\gamma_- = 4$,
    $m = 0.05$.

    Args:
        gamma_positive: $\gamma_+ \ge 0$, focusing exponent of the positive labels.
        gamma_negative: $\gamma_- \ge 0$, focusing exponent of the negative labels.
        clip: probability margin $m \in [0, 1)$ shifting the negatives' probabilities.
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: logits `(N, K)` or `(N,)`; target: {0, 1} labels of the same shape.
        - output: a scalar, or the per-sample sums over labels `(N,)` for `reduction="none"`.

    Examples:
        >>> loss = AsymmetricLoss(reduction="none")
        >>> loss(torch.tensor([[4.0, -4.0], [-4.0, 4.0]]), torch.tensor([[1, 0], [1, 0]]))
        tensor([0.0181, 6.0467])
    """

    tasks: ClassVar[tuple[str, ...]] = ("multilabel", "binary")
    # Around the paper's recommended gamma+ = 0, gamma- = 4, clip = 0.05; both exponents from 0 (BCE) up.
    search_space: ClassVar[dict[str, dict[str, float]]] = {
        "gamma_positive": {"low": 0.0, "high": 2.0},
        "gamma_negative": {"low": 0.0, "high": 6.0},
        "clip": {"low": 0.0, "high": 0.2},
    }

    def __init__(
        self,
        *,
        gamma_positive: float = 0.0,
        gamma_negative: float = 4.0,
        clip: float = 0.05,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.gamma_positive = check_at_least("asymmetric", "gamma_positive", gamma_positive, 0.0)
        self.gamma_negative = check_at_least("asymmetric", "gamma_negative", gamma_negative, 0.0)
        self.clip = _check_clip(clip)
        self.reduction = check_reduction("asymmetric", reduction)
        self.scan_targets = True  # lossforge sets it False when it trains on data it validated up front

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return asymmetric_loss(
            prediction,
            target,
            gamma_positive=self.gamma_positive,
            gamma_negative=self.gamma_negative,
            clip=self.clip,
            reduction=self.reduction,
            check_values=self.scan_targets,
        )

    def extra_repr(self) -> str:
        return (
            f"gamma_positive={self.gamma_positive}, gamma_negative={self.gamma_negative}, clip={self.clip}, "
            f"reduction={self.reduction!r}"
        )
