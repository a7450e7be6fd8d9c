"""The proxy-based sub-family: ProxyNCA (a softmax over the distances to the class proxies) and Proxy
Anchor (each proxy pulls its class's embeddings and pushes the others). Pure functions first, then the
registered modules.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossforge.contract import FloatRange, Prior
from lossforge.losses.base import Reduction, check_reduction, reduce
from lossforge.losses.proxy.base import _check_inputs, _check_positive, _cosine, _ProxyLoss


def proxy_nca_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    softmax_scale: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """ProxyNCA (Movshovitz-Attias et al. 2017), in PML's and ProxyNCA++'s form: a softmax over the
    negative squared distances of the normalised embedding to every normalised proxy.

    $$
    \\ell_i = -\\log \\frac{e^{-s \\|\\hat x_i - \\hat p_{y_i}\\|^2}}{\\sum_c e^{-s \\|\\hat x_i - \\hat p_c\\|^2}},
    \\qquad \\|\\hat x - \\hat p\\|^2 = 2 - 2 \\cos \\theta
    $$

    (the 2017 paper's denominator leaves out the true class; that loss has no lower bound).

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: class indices in `[0, C)`.
        proxies: one vector per class (normalised here).
        softmax_scale: $s > 0$ (an inverse temperature; ProxyNCA++ uses 9).
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, proxies: $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> proxy_nca_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), proxies)
        tensor(0.1269)
    """
    _check_inputs("proxy_nca", embeddings, labels, proxies)
    _check_proxy_nca(softmax_scale, reduction)
    return _proxy_nca(embeddings, labels, proxies, softmax_scale, reduction)


def _proxy_nca(embeddings: Tensor, labels: Tensor, proxies: Tensor, softmax_scale: float, reduction: str) -> Tensor:
    squared_distances = (2 - 2 * _cosine(embeddings, proxies)).clamp_min(0)  # (N, C)
    return reduce(F.cross_entropy(-softmax_scale * squared_distances, labels, reduction="none"), reduction)


def proxy_anchor_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.1,
    alpha: float = 32.0,
    reduction: str = "mean",
) -> Tensor:
    """Proxy Anchor (Kim et al. 2020): each proxy is an anchor that pulls the batch's embeddings of its class
    and pushes the others, weighting hard ones more (a smooth LogSumExp over the batch).

    $$
    \\ell = \\frac{1}{|P^+|} \\sum_{p \\in P^+}
    \\log\\Big(1 + \\sum_{x \\in X_p^+} e^{-\\alpha (s(x, p) - \\delta)}\\Big)
    + \\frac{1}{|P|} \\sum_{p \\in P} \\log\\Big(1 + \\sum_{x \\in X_p^-} e^{\\alpha (s(x, p) + \\delta)}\\Big)
    $$

    with $s$ the cosine similarity, $P$ all proxies, $P^+$ those with an embedding of
    their class in the batch, $X_p^{+}$ / $X_p^{-}$ the batch's embeddings of / not of p's class.

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: class indices in `[0, C)`.
        proxies: one vector per class (normalised here).
        margin: $\\delta \\ge 0$.
        alpha: $\\alpha > 0$, the scale (how much harder examples weigh).
        reduction: `"mean"` (the loss above), `"sum"` or `"none"`: one value per proxy,
            $\\ell_p = \\frac{|P|}{|P^+|} \\ell^+_p + \\ell^-_p$, whose mean is the loss.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, proxies: $(C, D)$
        - Output: scalar, or $(C,)$ for `"none"`

    Examples:
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> proxy_anchor_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), proxies, margin=0.0, alpha=1.0)
        tensor(0.6598)
    """
    _check_inputs("proxy_anchor", embeddings, labels, proxies)
    _check_proxy_anchor(margin, alpha, reduction)
    return _proxy_anchor(embeddings, labels, proxies, margin, alpha, reduction)


def _proxy_anchor(
    embeddings: Tensor, labels: Tensor, proxies: Tensor, margin: float, alpha: float, reduction: str
) -> Tensor:
    cosine = _cosine(embeddings, proxies)  # (N, C)
    num_classes = cosine.shape[1]
    positive = F.one_hot(labels, num_classes).bool()  # (N, C)
    # log(1 + sum exp) as a logsumexp with a row of zeros: finite (0) for a proxy with no such embedding.
    zeros = cosine.new_zeros(1, num_classes)
    pulled = torch.cat([(-alpha * (cosine - margin)).masked_fill(~positive, -torch.inf), zeros])  # (N + 1, C)
    pushed = torch.cat([(alpha * (cosine + margin)).masked_fill(positive, -torch.inf), zeros])  # (N + 1, C)
    pull, push = pulled.logsumexp(dim=0), pushed.logsumexp(dim=0)  # (C,) each
    with_positives = positive.any(dim=0).sum().clamp_min(1)
    per_proxy = pull * (num_classes / with_positives) + push  # (C,): mean over proxies is the loss
    return reduce(per_proxy, reduction)


def _check_proxy_nca(softmax_scale: float, reduction: str) -> None:
    _check_positive("proxy_nca", softmax_scale=softmax_scale)
    check_reduction("proxy_nca", reduction)


def _check_proxy_anchor(margin: float, alpha: float, reduction: str) -> None:
    if not (isinstance(margin, int | float) and 0 <= margin <= 1):
        raise ValueError(f"proxy_anchor: expected `margin` in [0, 1] (a cosine difference), got {margin}")
    _check_positive("proxy_anchor", alpha=alpha)
    check_reduction("proxy_anchor", reduction)


# -- modules ---------------------------------------------------------------------------------------


class ProxyNCALoss(_ProxyLoss):
    """ProxyNCA; the math is `proxy_nca_loss`.

    Args:
        softmax_scale: $s > 0$, the inverse temperature of the softmax over squared distances.
        num_classes: the number of proxies outside lossforge's training; with `embedding_dim` or neither.
        embedding_dim: the proxies' width outside lossforge's training; with `num_classes` or neither.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$; proxies $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> loss = ProxyNCALoss(num_classes=3, embedding_dim=4, reduction="none")
        >>> loss(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])).shape
        torch.Size([5])
    """

    name = "proxy_nca"
    # Proxies start random and must keep up with the embedding they anchor: ProxyNCA++ and Proxy Anchor's
    # authors train them 100× faster than a pretrained backbone; lossforge's MLPs train from scratch at 1e-3.
    lr_multiplier = 100.0
    search_space: ClassVar[dict[str, Prior]] = {"softmax_scale": FloatRange(1.0, 32.0, log=True)}

    def __init__(
        self,
        *,
        softmax_scale: float = 1.0,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        _check_proxy_nca(softmax_scale, reduction)
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.softmax_scale = float(softmax_scale)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any = None) -> Tensor:
        proxies = self._checked(embeddings, labels, indices_tuple)
        return _proxy_nca(embeddings, labels, proxies, self.softmax_scale, self.reduction)

    def extra_repr(self) -> str:
        return f"softmax_scale={self.softmax_scale}, {self._shape_repr()}, reduction={self.reduction!r}"


class ProxyAnchorLoss(_ProxyLoss):
    """Proxy Anchor; the math is `proxy_anchor_loss`.

    Args:
        margin: $\\delta \\ge 0$.
        alpha: $\\alpha > 0$.
        num_classes: the number of proxies outside lossforge's training; with `embedding_dim` or neither.
        embedding_dim: the proxies' width outside lossforge's training; with `num_classes` or neither.
        reduction: `"mean"`, `"sum"` or `"none"` (per proxy, scaled so that the mean is the loss).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$; proxies $(C, D)$
        - Output: scalar, or $(C,)$ for `"none"`

    Examples:
        >>> loss = ProxyAnchorLoss(num_classes=3, embedding_dim=4, reduction="none")
        >>> loss(torch.randn(5, 4), torch.tensor([0, 1, 0, 0, 1])).shape  # one value per proxy
        torch.Size([3])
    """

    name = "proxy_anchor"
    lr_multiplier = 100.0  # the paper's: proxies at 100× the backbone's learning rate
    search_space: ClassVar[dict[str, Prior]] = {
        "margin": FloatRange(0.0, 0.5),
        "alpha": FloatRange(4.0, 128.0, log=True),
    }

    def __init__(
        self,
        *,
        margin: float = 0.1,
        alpha: float = 32.0,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        _check_proxy_anchor(margin, alpha, reduction)
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.margin, self.alpha = float(margin), float(alpha)

    def _initialize(self, proxies: Tensor) -> None:
        nn.init.kaiming_normal_(proxies, mode="fan_out")  # the paper's code (and PML's default)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any = None) -> Tensor:
        proxies = self._checked(embeddings, labels, indices_tuple)
        return _proxy_anchor(embeddings, labels, proxies, self.margin, self.alpha, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, alpha={self.alpha}, {self._shape_repr()}, reduction={self.reduction!r}"
