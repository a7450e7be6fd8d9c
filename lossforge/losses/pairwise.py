"""Metric-learning losses over all pairs of a batch: supervised contrastive (SupCon), Circle, lifted structure.

Each is called `loss(embeddings (N, D), labels (N,), indices_tuple=None)`, like the losses in
[lossforge.losses.metric][]. Where the contrastive and triplet losses score tuples one by one, these
score an anchor (SupCon, Circle) or a positive pair (lifted structure) against *sets* of pairs through a
log-sum-exp, so they work from the (N, N) similarity or distance matrix and a positive and a negative
mask. `indices_tuple=None` means every pair of the batch (the losses' definitions); mined pairs
`(a1, p, a2, n)` restrict the two masks to those pairs, and triplets `(a, p, n)` count as their pairs
`(a, p)` and `(a, n)`, as in pytorch-metric-learning (PML). Each distinct pair counts once.

Reductions are those of the other metric losses: `"mean"` (over the terms the loss defines: anchors or
positive pairs), `"sum"`, `"none"` (those terms) and `"mean_nonzero"` (the mean over non-zero terms,
PML's `AvgNonZeroReducer`, its default for all three). A batch without a term gives 0, still attached to
the embeddings. After each forward `last_num_tuples` and `last_num_active` count the terms and the
non-zero ones.

Conventions against PML (`SupConLoss`, `CircleLoss`, `LiftedStructureLoss`), each tested numerically:

* SupCon and Circle use the cosine similarity of L2-normalised embeddings, as PML's defaults do; Circle's
  `relaxation` and `scale` are PML's `m` and `gamma`.
* SupCon's and Circle's `"mean"` averages over the anchors that have a term (SupCon: a positive;
  Circle: a positive and a negative); PML's `"mean_nonzero"` also drops anchors whose loss is exactly 0.
* Lifted structure scores each *ordered* positive pair with $[J_{ij}]_+^2 / 2$ like PML, so
  `"mean"` over all pairs is Oh Song et al.'s $\\frac{1}{2|P|}\\sum_{(i,j)} [J_{ij}]_+^2$ over
  unordered pairs. Distance: lossforge's (Euclidean by default, no normalisation; PML normalises). A
  positive pair neither of whose members has a negative has no term here; PML scores it
  $[d_{ij}]_+^2/2$ (its empty log-sum-exp is 0). PML's version also builds a (positive pairs ×
  negative pairs) matrix, O(N⁴) memory for all pairs; here it is O(N²).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lossforge.contract import FloatRange, Prior
from lossforge.losses.base import check_reduction
from lossforge.losses.metric import (
    METRIC_REDUCTIONS,
    _check_indices,
    _check_inputs,
    _MetricLoss,
    _reduce,
    _Result,
)
from lossforge.mining.distances import check_distance, pairwise_distance
from lossforge.mining.tuples import label_masks


def pair_masks(labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> tuple[Tensor, Tensor]:
    """Boolean (N, N) masks of the positive and the negative pairs to score.

    `None`: every pair of the batch (`label_masks`). Pairs `(a1, p, a2, n)`: exactly those; triplets
    `(a, p, n)`: their pairs `(a, p)` and `(a, n)`. A pair listed twice counts once.

    Examples:
        >>> positive, negative = pair_masks(torch.tensor([0, 0, 1]), (torch.tensor([0]), torch.tensor([1]),
        ...                                 torch.tensor([1]), torch.tensor([2])))
        >>> positive.nonzero().tolist(), negative.nonzero().tolist()
        ([[0, 1]], [[1, 2]])
    """
    if indices_tuple is None:
        return label_masks(labels)
    if len(indices_tuple) == 4:
        anchor1, positive_index, anchor2, negative_index = indices_tuple
    else:
        anchor1, positive_index, negative_index = indices_tuple
        anchor2 = anchor1
    num = labels.shape[0]
    positive = torch.zeros(num, num, dtype=torch.bool, device=labels.device)  # (N, N)
    negative = torch.zeros_like(positive)
    positive[anchor1, positive_index] = True
    negative[anchor2, negative_index] = True
    return positive, negative


def _masked_logsumexp(values: Tensor, mask: Tensor, rows: Tensor) -> Tensor:
    """Per-row log-sum-exp over `mask`, for the rows in `rows` (the others come out finite but
    meaningless: they keep their values, so no row is all `-inf` and no gradient is NaN)."""
    return values.masked_fill(~mask & rows[:, None], -torch.inf).logsumexp(dim=1)  # (N,)


def _cosine_similarity(embeddings: Tensor) -> Tensor:
    unit = F.normalize(embeddings, dim=1)  # (N, D)
    return unit @ unit.T  # (N, N)


# -- SupCon ----------------------------------------------------------------------------------------


def _supcon(
    embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None, temperature: float, reduction: str
) -> _Result:
    positive, negative = pair_masks(labels, indices_tuple)
    unit = F.normalize(embeddings, dim=1)  # (N, D)
    logits = (unit / temperature) @ unit.T  # (N, N); dividing (N, D), not (N, N), by the temperature
    positive_count = positive.sum(dim=1)  # (N,)
    has_term = positive_count > 0
    log_denominator = _masked_logsumexp(logits, positive | negative, has_term)  # (N,)
    positive_logits = torch.where(positive, logits, 0.0).sum(dim=1)  # (N,)
    per_anchor = log_denominator - positive_logits / positive_count.clamp_min(1)  # (N,)
    return _reduce(per_anchor[has_term], reduction)


def supcon_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    temperature: float = 0.1,
    reduction: str = "mean",
) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, $\\mathcal{L}^{sup}_{out}$).

    $$
    \\ell_i = -\\frac{1}{|P(i)|} \\sum_{p \\in P(i)}
    \\log \\frac{\\exp(s_{ip} / \\tau)}{\\sum_{a \\in A(i)} \\exp(s_{ia} / \\tau)}
    $$

    with $s$ the cosine similarity, $P(i)$ the positives of anchor $i$ and $A(i)$
    its positives and negatives (every other sample, unless pairs are mined). Only anchors with a positive
    have a term.

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: integer class labels.
        indices_tuple: mined pairs `(a1, p, a2, n)` or triplets, restricting $P$ and $A$;
            `None` (the paper's loss): every pair.
        temperature: $\\tau > 0$.
        reduction: `"mean"` (over anchors with a positive), `"sum"`, `"mean_nonzero"` (PML's default)
            or `"none"`: one value per anchor with a positive, in index order.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: scalar, or $(A,)$ for `"none"`

    Examples:
        >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]])
        >>> supcon_loss(embeddings, torch.tensor([0, 0, 1]), temperature=0.5, reduction="none")
        tensor([0.1316, 0.1892])
    """
    _check_inputs("supcon", embeddings, labels)
    _check_supcon_options("supcon", temperature, reduction)
    if indices_tuple is not None:
        _check_indices("supcon", indices_tuple)
    return _supcon(embeddings, labels, indices_tuple, temperature, reduction)[0]


def _check_supcon_options(loss_name: str, temperature: float, reduction: str) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"{loss_name}: expected `temperature` > 0, got {temperature}")
    check_reduction(loss_name, reduction, METRIC_REDUCTIONS)


# -- Circle ----------------------------------------------------------------------------------------


def _circle(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None,
    relaxation: float,
    scale: float,
    reduction: str,
) -> _Result:
    positive, negative = pair_masks(labels, indices_tuple)
    similarity = _cosine_similarity(embeddings)  # (N, N)
    detached = similarity.detach()
    # The weights alpha are constants in the paper's gradient analysis, hence detached.
    positive_logits = -scale * (1 + relaxation - detached).clamp_min(0.0) * (similarity - (1 - relaxation))
    negative_logits = scale * (detached + relaxation).clamp_min(0.0) * (similarity - relaxation)
    has_term = positive.any(dim=1) & negative.any(dim=1)  # (N,)
    per_anchor = F.softplus(
        _masked_logsumexp(positive_logits, positive, has_term) + _masked_logsumexp(negative_logits, negative, has_term)
    )  # (N,)
    return _reduce(per_anchor[has_term], reduction)


def circle_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    relaxation: float = 0.4,
    scale: float = 80.0,
    reduction: str = "mean",
) -> Tensor:
    """Circle loss (Sun et al. 2020), one term per anchor with a positive and a negative.

    $$
    \\ell_i = \\log\\Big(1 + \\sum_{n \\in N(i)} e^{\\gamma \\alpha_n (s_{in} - \\Delta_n)}
    \\sum_{p \\in P(i)} e^{-\\gamma \\alpha_p (s_{ip} - \\Delta_p)}\\Big)
    $$

    with $s$ the cosine similarity, $\\alpha_p = [1 + m - s_{ip}]_+$,
    $\\alpha_n = [s_{in} + m]_+$ (held constant in the gradient, as in the paper),
    $\\Delta_p = 1 - m$, $\\Delta_n = m$, $m$ the relaxation and $\\gamma$ the scale.

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: integer class labels.
        indices_tuple: mined pairs `(a1, p, a2, n)` or triplets, restricting $P$ and $N$;
            `None`: every pair.
        relaxation: $m \\in [0, 1)$ (PML's `m`; the paper's retrieval setting is 0.4).
        scale: $\\gamma > 0$ (PML's `gamma`).
        reduction: `"mean"` (over anchors with a positive and a negative), `"sum"`, `"mean_nonzero"`
            (PML's default) or `"none"`: one value per such anchor, in index order.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: scalar, or $(A,)$ for `"none"`

    Examples:
        >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]])
        >>> circle_loss(embeddings, torch.tensor([0, 0, 1]), scale=4.0, reduction="none")
        tensor([0.2457, 0.2812])
    """
    _check_inputs("circle", embeddings, labels)
    _check_circle_options("circle", relaxation, scale, reduction)
    if indices_tuple is not None:
        _check_indices("circle", indices_tuple)
    return _circle(embeddings, labels, indices_tuple, relaxation, scale, reduction)[0]


def _check_circle_options(loss_name: str, relaxation: float, scale: float, reduction: str) -> None:
    if not 0 <= relaxation < 1:
        raise ValueError(f"{loss_name}: expected `relaxation` in [0, 1), got {relaxation}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"{loss_name}: expected `scale` > 0, got {scale}")
    check_reduction(loss_name, reduction, METRIC_REDUCTIONS)


# -- lifted structure ------------------------------------------------------------------------------


def _lifted_structure(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None,
    margin: float,
    distance: str,
    reduction: str,
) -> _Result:
    positive, negative = pair_masks(labels, indices_tuple)
    distances = pairwise_distance(embeddings, distance=distance)  # (N, N)
    has_negative = negative.any(dim=1)  # (N,)
    # log sum_{k in N(i)} exp(m - d_ik) per row; -inf for a row without negatives (a constant: no gradient)
    negative_term = torch.where(has_negative, _masked_logsumexp(margin - distances, negative, has_negative), -torch.inf)
    anchor, other = torch.nonzero(positive & (has_negative[:, None] | has_negative[None, :]), as_tuple=True)  # (K,)
    # At most one side is -inf, so logaddexp and its gradient stay finite.
    structure = torch.logaddexp(negative_term[anchor], negative_term[other]) + distances[anchor, other]  # (K,)
    return _reduce(structure.clamp_min(0.0).pow(2) / 2, reduction)


def lifted_structure_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    margin: float = 1.0,
    distance: str = "euclidean",
    reduction: str = "mean",
) -> Tensor:
    """Lifted structured loss (Oh Song et al. 2016): each positive pair against all negatives of both ends.

    $$
    J_{ij} = \\log\\Big(\\sum_{k \\in N(i)} e^{m - d_{ik}} + \\sum_{l \\in N(j)} e^{m - d_{jl}}\\Big)
    + d_{ij}, \\qquad \\ell(i, j) = \\tfrac{1}{2} [J_{ij}]_+^2
    $$

    for every ordered positive pair $(i, j)$, so `"mean"` is the paper's
    $\\frac{1}{2|P|} \\sum [J_{ij}]_+^2$ over unordered pairs. $N(i)$: the negatives of
    $i$; a pair neither of whose ends has one has no term.

    Args:
        embeddings: the batch's embeddings.
        labels: integer class labels.
        indices_tuple: mined pairs `(a1, p, a2, n)` or triplets: the positive pairs scored and the
            negative pairs $N(\\cdot)$ holds; `None`: every pair.
        margin: $m$ (PML's `neg_margin`).
        distance: `"euclidean"` (the paper's), `"squared_euclidean"` or `"cosine"`.
        reduction: `"mean"`, `"sum"`, `"mean_nonzero"` (PML's default) or `"none"`: one value per
            ordered positive pair with a term, sorted by (i, j).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: scalar, or $(K,)$ for `"none"`

    Examples:
        >>> embeddings = torch.tensor([[0.0], [0.5], [1.0]])
        >>> lifted_structure_loss(embeddings, torch.tensor([0, 0, 1]), reduction="none")
        tensor([1.0865, 1.0865])
    """
    _check_inputs("lifted_structure", embeddings, labels)
    _check_lifted_options("lifted_structure", margin, distance, reduction)
    if indices_tuple is not None:
        _check_indices("lifted_structure", indices_tuple)
    return _lifted_structure(embeddings, labels, indices_tuple, margin, distance, reduction)[0]


def _check_lifted_options(loss_name: str, margin: float, distance: str, reduction: str) -> None:
    if not math.isfinite(margin):
        raise ValueError(f"{loss_name}: expected a finite `margin`, got {margin}")
    check_distance(distance, owner=loss_name)
    check_reduction(loss_name, reduction, METRIC_REDUCTIONS)


# -- modules ---------------------------------------------------------------------------------------


class SupConLoss(_MetricLoss):
    """Supervised contrastive loss on cosine similarities; the math is `supcon_loss`.

    Args:
        temperature: $\\tau > 0$ (0.1: the paper's and PML's default).
        reduction: `"mean"`, `"sum"`, `"mean_nonzero"` or `"none"` (per anchor with a positive).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, `indices_tuple`: pairs, triplets or None
        - Output: scalar, or per anchor for `"none"`

    Examples:
        >>> loss = SupConLoss(temperature=0.5)
        >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]], requires_grad=True)
        >>> loss(embeddings, torch.tensor([0, 0, 1]))
        tensor(0.1604, grad_fn=<DivBackward0>)
        >>> int(loss.last_num_tuples)
        2
    """

    name = "supcon"
    # A cosine-similarity loss: a miner without its own distance uses this one, retrieval ranks by it.
    distance = "cosine"
    # Khosla et al. found 0.1 best and training unstable much below 0.05; up to 1 (plain softmax).
    search_space: ClassVar[dict[str, Prior]] = {"temperature": FloatRange(0.03, 1.0, log=True)}

    def __init__(self, *, temperature: float = 0.1, reduction: str = "mean") -> None:
        _check_supcon_options(self.name, temperature, reduction)
        super().__init__(reduction=reduction)
        self.temperature = float(temperature)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        self._check(embeddings, labels, indices_tuple)
        return self._record(_supcon(embeddings, labels, indices_tuple, self.temperature, self.reduction))

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class CircleLoss(_MetricLoss):
    """Circle loss on cosine similarities, per anchor; the math is `circle_loss`.

    Args:
        relaxation: $m \\in [0, 1)$, PML's `m` (0.4: the paper's retrieval setting, PML's default).
        scale: $\\gamma > 0$, PML's `gamma` (80: the same).
        reduction: `"mean"`, `"sum"`, `"mean_nonzero"` or `"none"` (per anchor with a term).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, `indices_tuple`: pairs, triplets or None
        - Output: scalar, or per anchor for `"none"`

    Examples:
        >>> loss = CircleLoss(scale=4.0)
        >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]], requires_grad=True)
        >>> loss(embeddings, torch.tensor([0, 0, 1]))
        tensor(0.2634, grad_fn=<DivBackward0>)
    """

    name = "circle"
    distance = "cosine"
    # The paper's settings: m in 0.25-0.4 and gamma 80-256 (its ablation spans m -0.2..0.3, gamma 32..1024).
    search_space: ClassVar[dict[str, Prior]] = {
        "relaxation": FloatRange(0.1, 0.5),
        "scale": FloatRange(16.0, 256.0, log=True),
    }

    def __init__(self, *, relaxation: float = 0.4, scale: float = 80.0, reduction: str = "mean") -> None:
        _check_circle_options(self.name, relaxation, scale, reduction)
        super().__init__(reduction=reduction)
        self.relaxation, self.scale = float(relaxation), float(scale)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        self._check(embeddings, labels, indices_tuple)
        return self._record(_circle(embeddings, labels, indices_tuple, self.relaxation, self.scale, self.reduction))

    def extra_repr(self) -> str:
        return f"relaxation={self.relaxation}, scale={self.scale}, reduction={self.reduction!r}"


class LiftedStructureLoss(_MetricLoss):
    """Lifted structured loss, per ordered positive pair; the math is `lifted_structure_loss`.

    Args:
        margin: $m$, how far negatives should be (PML's `neg_margin`); also a pair miner's margin.
        distance: `"euclidean"` (default), `"squared_euclidean"` or `"cosine"`.
        reduction: `"mean"`, `"sum"`, `"mean_nonzero"` or `"none"` (per positive pair).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, `indices_tuple`: pairs, triplets or None
        - Output: scalar, or per ordered positive pair for `"none"`

    Examples:
        >>> loss = LiftedStructureLoss()
        >>> embeddings = torch.tensor([[0.0], [0.5], [1.0]], requires_grad=True)
        >>> loss(embeddings, torch.tensor([0, 0, 1]))
        tensor(1.0865, grad_fn=<DivBackward0>)
    """

    name = "lifted_structure"
    # A decade either side of the paper's 1 (unnormalised embeddings set the scale); distance not tuned.
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, margin: float = 1.0, distance: str = "euclidean", reduction: str = "mean") -> None:
        _check_lifted_options(self.name, margin, distance, reduction)
        super().__init__(reduction=reduction)
        self.margin, self.distance = float(margin), distance

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        self._check(embeddings, labels, indices_tuple)
        return self._record(
            _lifted_structure(embeddings, labels, indices_tuple, self.margin, self.distance, self.reduction)
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}, reduction={self.reduction!r}"
