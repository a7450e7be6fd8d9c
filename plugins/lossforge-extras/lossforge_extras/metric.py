"""Metric-learning losses on cosine similarities: multi-similarity and InfoNCE.

Both are called `loss(embeddings (N, D), labels (N,), indices_tuple=None)`, the lossforge metric-loss
contract. `indices_tuple` is a miner's output — pairs `(a1, p, a2, n)` or triplets `(a, p, n)`, whose
`(a, p)` and `(a, n)` pairs are used — and `None` means every pair of the batch. Both declare
`tuple_kind = "pair"` and `distance = "cosine"` (lossforge then evaluates retrieval with cosine
similarity too). A batch without a usable pair gives a loss of 0 that still backpropagates.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossforge_extras._common import check_at_least, check_reduction, reduce
from lossforge_extras.similarity import check_embeddings, cosine_similarities, pair_masks

# -- multi-similarity ------------------------------------------------------------------------------


def _log_one_plus_sum_exp(values: Tensor, mask: Tensor) -> Tensor:
    """$\\log(1 + \\sum_{j: mask_{ij}} e^{v_{ij}})$ per row, stably; 0 for a row without pairs."""
    masked = values.masked_fill(~mask, -math.inf)  # (N, N)
    return torch.logsumexp(torch.cat([values.new_zeros(values.shape[0], 1), masked], dim=1), dim=1)  # (N,)


def _check_base(base: float) -> float:
    if isinstance(base, bool) or not isinstance(base, int | float) or not -1 <= base <= 1:
        raise ValueError(f"multi_similarity: expected `base` in [-1, 1] (a cosine similarity), got {base!r}")
    return float(base)


def multi_similarity_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-similarity loss (Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep
    Metric Learning", CVPR 2019), per anchor.

    $$
    \ell_i = \frac{1}{\alpha} \log\Big(1 + \sum_{k \in P_i} e^{-\alpha (S_{ik} - \lambda)}\Big)
           + \frac{1}{\beta} \log\Big(1 + \sum_{k \in N_i} e^{\beta (S_{ik} - \lambda)}\Big)
    $$

    $S$ is the cosine similarity, $P_i$ and $N_i$ are anchor $i$'s positive and
    negative partners (all of them, or those a miner chose), $\lambda$ is `base`. Each pair is
    weighted by its own similarity and, through the log-sum-exp, by the other pairs of its anchor. An
    anchor without partners contributes 0.

    Args:
        embeddings: `(N, D)`; normalised here, so any scale works.
        labels: integer class labels `(N,)`.
        indices_tuple: pairs `(a1, p, a2, n)`, triplets `(a, p, n)`, or `None` for every pair.
        alpha: $\alpha > 0$, the positive pairs' scale.
        beta: $\beta > 0$, the negative pairs' scale.
        base: $\lambda \in [-1, 1]$, the similarity the pairs are pushed away from.
        reduction: `"mean"` (over anchors), `"sum"`, or `"none"` for the per-anchor values `(N,)`.

    Examples:
        >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
        >>> multi_similarity_loss(embeddings, torch.tensor([0, 0, 1]), reduction="none")
        tensor([0.1580, 0.1580, 0.0000])
    """
    alpha = check_at_least("multi_similarity", "alpha", alpha, 0.0, strict=True)
    beta = check_at_least("multi_similarity", "beta", beta, 0.0, strict=True)
    base = _check_base(base)
    check_reduction("multi_similarity", reduction)
    check_embeddings("multi_similarity", embeddings, labels)
    positive, negative = pair_masks("multi_similarity", labels, indices_tuple)
    similarities = cosine_similarities(embeddings)  # (N, N)
    positive_term = _log_one_plus_sum_exp(-alpha * (similarities - base), positive) / alpha  # (N,)
    negative_term = _log_one_plus_sum_exp(beta * (similarities - base), negative) / beta  # (N,)
    return reduce(positive_term + negative_term, reduction)


class MultiSimilarityLoss(nn.Module):
    r"""Multi-similarity loss, registered as `multi_similarity` (see `multi_similarity_loss`).

    $$
    \ell_i = \frac{1}{\alpha} \log\Big(1 + \sum_{k \in P_i} e^{-\alpha (S_{ik} - \lambda)}\Big)
           + \frac{1}{\beta} \log\Big(1 + \sum_{k \in N_i} e^{\beta (S_{ik} - \lambda)}\Big)
    $$

    The defaults ($\alpha = 2$, $\beta = 50$, $\lambda = 0.5$) are the authors' code's and
    pytorch-metric-learning's. The paper pairs this loss with its own pair mining: `miner=multi_similarity`.

    Args:
        alpha: $\alpha > 0$.
        beta: $\beta > 0$.
        base: $\lambda \in [-1, 1]$.
        reduction: `"mean"` (over anchors), `"sum"` or `"none"` (per anchor, `(N,)`).

    Shape:
        - embeddings: `(N, D)`; labels: `(N,)`; output: a scalar, or `(N,)` for `"none"`.

    Examples:
        >>> loss = MultiSimilarityLoss()
        >>> round(loss(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])).item(), 4)
        0.0
    """

    tasks: ClassVar[tuple[str, ...]] = ("metric",)
    tuple_kind: ClassVar[str] = "pair"
    distance: ClassVar[str] = "cosine"
    # alpha and beta are inverse temperatures: log-uniform, a decade either side of the defaults; base is a
    # cosine-similarity threshold, kept non-negative (below 0 nearly every negative pair counts).
    search_space: ClassVar[dict[str, dict[str, float | bool]]] = {
        "alpha": {"low": 0.2, "high": 20.0, "log": True},
        "beta": {"low": 5.0, "high": 500.0, "log": True},
        "base": {"low": 0.0, "high": 1.0},
    }

    def __init__(self, *, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, reduction: str = "mean") -> None:
        super().__init__()
        self.alpha = check_at_least("multi_similarity", "alpha", alpha, 0.0, strict=True)
        self.beta = check_at_least("multi_similarity", "beta", beta, 0.0, strict=True)
        self.base = _check_base(base)
        self.reduction = check_reduction("multi_similarity", reduction)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        return multi_similarity_loss(
            embeddings,
            labels,
            indices_tuple,
            alpha=self.alpha,
            beta=self.beta,
            base=self.base,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, base={self.base}, reduction={self.reduction!r}"


# -- InfoNCE ---------------------------------------------------------------------------------------


def info_nce_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    temperature: float = 0.07,
    reduction: str = "mean",
) -> Tensor:
    r"""InfoNCE (van den Oord et al. 2018; NT-Xent in SimCLR, Chen et al. 2020), one term per positive pair.

    $$
    \ell_{ap} = -\log \frac{e^{S_{ap} / \tau}}{e^{S_{ap} / \tau} + \sum_{n \in N_a} e^{S_{an} / \tau}}
    $$

    $S$ is the cosine similarity and $N_a$ anchor $a$'s negatives (all of them, or those
    a miner chose). Each positive pair is a classification of the positive among the anchor's negatives
    at temperature $\tau$. A positive whose anchor has no negative costs 0.

    Args:
        embeddings: `(N, D)`; normalised here.
        labels: integer class labels `(N,)`.
        indices_tuple: pairs `(a1, p, a2, n)`, triplets `(a, p, n)`, or `None` for every pair.
        temperature: $\tau > 0$.
        reduction: `"mean"` (over positive pairs), `"sum"`, or `"none"` for the per-pair values
            `(P,)`, in the order of `(anchor, positive)`.

    Examples:
        >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> info_nce_loss(embeddings, torch.tensor([0, 0, 1]), temperature=1.0, reduction="none")
        tensor([0.3133, 0.3133])
    """
    temperature = check_at_least("info_nce", "temperature", temperature, 0.0, strict=True)
    check_reduction("info_nce", reduction)
    check_embeddings("info_nce", embeddings, labels)
    positive, negative = pair_masks("info_nce", labels, indices_tuple)
    logits = cosine_similarities(embeddings) / temperature  # (N, N)
    anchors, partners = positive.nonzero(as_tuple=True)  # (P,) each
    has_negative = negative.any(dim=1)  # (N,)
    # log Σ_n e^{S_an/τ} per anchor; rows without negatives get zeros inside (a logsumexp over only -inf
    # has a NaN gradient) and -inf outside, which makes their pairs' loss softplus(-inf) = 0.
    negative_logits = torch.where(negative & has_negative[:, None], logits, -math.inf)
    negative_logits = torch.where(has_negative[:, None], negative_logits, 0.0)
    negative_lse = torch.where(has_negative, torch.logsumexp(negative_logits, dim=1), -math.inf)  # (N,)
    values = F.softplus(negative_lse[anchors] - logits[anchors, partners])  # log(1 + Σ_n e^{(S_an - S_ap)/τ})
    return reduce(values, reduction)


class InfoNCELoss(nn.Module):
    r"""InfoNCE over labelled pairs, registered as `info_nce` (see `info_nce_loss`).

    $$
    \ell_{ap} = -\log \frac{e^{S_{ap} / \tau}}{e^{S_{ap} / \tau} + \sum_{n \in N_a} e^{S_{an} / \tau}}
    $$

    Args:
        temperature: $\tau > 0$; the default 0.07 is MoCo's and pytorch-metric-learning's.
        reduction: `"mean"` (over positive pairs), `"sum"` or `"none"` (per positive pair).

    Shape:
        - embeddings: `(N, D)`; labels: `(N,)`; output: a scalar, or `(P,)` for `"none"`.

    Examples:
        >>> loss = InfoNCELoss(temperature=0.5)
        >>> round(loss(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0, 1])).item(), 4)
        0.1269
    """

    tasks: ClassVar[tuple[str, ...]] = ("metric",)
    tuple_kind: ClassVar[str] = "pair"
    distance: ClassVar[str] = "cosine"
    # The temperature divides the logits, so log-uniform; [0.01, 1] spans MoCo's 0.07 and SimCLR's 0.1-0.5.
    search_space: ClassVar[dict[str, dict[str, float | bool]]] = {
        "temperature": {"low": 0.01, "high": 1.0, "log": True}
    }

    def __init__(self, *, temperature: float = 0.07, reduction: str = "mean") -> None:
        super().__init__()
        self.temperature = check_at_least("info_nce", "temperature", temperature, 0.0, strict=True)
        self.reduction = check_reduction("info_nce", reduction)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        return info_nce_loss(embeddings, labels, indices_tuple, temperature=self.temperature, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
