"""The classifier-based sub-family: cross-entropy over scaled cosines of each embedding with one weight
vector per class — ArcFace (angular margin), CosFace (cosine margin) and normalised softmax (no margin,
a temperature). Pure functions first, then the registered modules.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lossforge.contract import FloatRange, Prior
from lossforge.losses.base import Reduction, check_reduction, reduce
from lossforge.losses.proxy.base import _check_inputs, _check_positive, _cosine, _ProxyLoss

# -- the pure functions --------------------------------------------------------------------------------


def arcface_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.5,
    scale: float = 64.0,
    reduction: str = "mean",
) -> Tensor:
    """ArcFace (additive angular margin; Deng et al. 2019): cross-entropy over scaled cosines, the true
    class's angle widened by `margin`.

    $$
    \\ell_i = -\\log \\frac{e^{s \\psi(\\theta_{i y_i})}}{e^{s \\psi(\\theta_{i y_i})} +
    \\sum_{c \\ne y_i} e^{s \\cos \\theta_{ic}}}, \\quad
    \\psi(\\theta) = \\begin{cases} \\cos(\\theta + m) & \\theta \\le \\pi - m \\\\
    \\cos\\theta - m \\sin m & \\text{otherwise} \\end{cases}
    $$

    with $\\cos \\theta_{ic}$ the cosine of embedding $i$ and proxy $c$ (the
    fallback keeps $\\psi$ decreasing past $\\pi - m$, as in the paper's code and PML).

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: class indices in `[0, C)`.
        proxies: one vector per class (normalised here).
        margin: $m$ in radians, in `[0, π/2]` (PML's is in degrees: 28.6° = 0.499 rad).
        scale: $s > 0$.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, proxies: $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> embeddings = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> arcface_loss(embeddings, torch.tensor([0, 1]), proxies, margin=0.5, scale=4.0, reduction="none")
        tensor([0.0295, 0.0295])
    """
    _check_inputs("arcface", embeddings, labels, proxies)
    _check_arcface(margin, scale, reduction)
    return _arcface(embeddings, labels, proxies, margin, scale, reduction)


def _arcface(
    embeddings: Tensor, labels: Tensor, proxies: Tensor, margin: float, scale: float, reduction: str
) -> Tensor:
    cosine = _cosine(embeddings, proxies)  # (N, C)
    target = cosine.gather(1, labels[:, None]).squeeze(1)  # (N,)
    # acos has an infinite slope at ±1: keep the angle one ulp inside, so the gradient stays finite.
    eps = torch.finfo(cosine.dtype).eps
    angle = torch.acos(target.clamp(-1 + eps, 1 - eps))
    widened = torch.where(angle <= math.pi - margin, torch.cos(angle + margin), target - margin * math.sin(margin))
    logits = cosine.scatter(1, labels[:, None], widened[:, None]) * scale  # (N, C)
    return reduce(F.cross_entropy(logits, labels, reduction="none"), reduction)


def cosface_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.35,
    scale: float = 64.0,
    reduction: str = "mean",
) -> Tensor:
    """CosFace (additive cosine margin, large margin cosine loss; Wang et al. 2018).

    $$
    \\ell_i = -\\log \\frac{e^{s (\\cos \\theta_{i y_i} - m)}}{e^{s (\\cos \\theta_{i y_i} - m)} +
    \\sum_{c \\ne y_i} e^{s \\cos \\theta_{ic}}}
    $$

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: class indices in `[0, C)`.
        proxies: one vector per class (normalised here).
        margin: $m \\ge 0$, subtracted from the true class's cosine.
        scale: $s > 0$.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, proxies: $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> cosface_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), proxies, margin=0.5, scale=2.0)
        tensor(0.3133)
    """
    _check_inputs("cosface", embeddings, labels, proxies)
    _check_cosface(margin, scale, reduction)
    return _cosface(embeddings, labels, proxies, margin, scale, reduction)


def _cosface(
    embeddings: Tensor, labels: Tensor, proxies: Tensor, margin: float, scale: float, reduction: str
) -> Tensor:
    cosine = _cosine(embeddings, proxies)  # (N, C)
    logits = (cosine - margin * F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)) * scale
    return reduce(F.cross_entropy(logits, labels, reduction="none"), reduction)


def normalized_softmax_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    temperature: float = 0.05,
    reduction: str = "mean",
) -> Tensor:
    """Normalised softmax (NormFace; Wang et al. 2017; Zhai & Wu 2018): cross-entropy over the cosines
    with the class proxies, divided by a temperature.

    $$
    \\ell_i = -\\log \\frac{e^{\\cos \\theta_{i y_i} / T}}{\\sum_c e^{\\cos \\theta_{ic} / T}}
    $$

    Args:
        embeddings: the batch's embeddings (normalised here).
        labels: class indices in `[0, C)`.
        proxies: one vector per class (normalised here).
        temperature: $T > 0$.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, proxies: $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> normalized_softmax_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), proxies, temperature=1.0)
        tensor(0.3133)
    """
    _check_inputs("normalized_softmax", embeddings, labels, proxies)
    _check_normalized_softmax(temperature, reduction)
    return _normalized_softmax(embeddings, labels, proxies, temperature, reduction)


def _normalized_softmax(
    embeddings: Tensor, labels: Tensor, proxies: Tensor, temperature: float, reduction: str
) -> Tensor:
    logits = _cosine(embeddings, proxies) / temperature  # (N, C)
    return reduce(F.cross_entropy(logits, labels, reduction="none"), reduction)


def _check_arcface(margin: float, scale: float, reduction: str) -> None:
    if not (isinstance(margin, int | float) and 0 <= margin <= math.pi / 2):
        raise ValueError(f"arcface: expected `margin` in [0, π/2] radians, got {margin} (PML's 28.6° is 0.499 rad)")
    _check_positive("arcface", scale=scale)
    check_reduction("arcface", reduction)


def _check_cosface(margin: float, scale: float, reduction: str) -> None:
    if not (isinstance(margin, int | float) and 0 <= margin <= 2):
        raise ValueError(f"cosface: expected `margin` in [0, 2] (a cosine difference), got {margin}")
    _check_positive("cosface", scale=scale)
    check_reduction("cosface", reduction)


def _check_normalized_softmax(temperature: float, reduction: str) -> None:
    _check_positive("normalized_softmax", temperature=temperature)
    check_reduction("normalized_softmax", reduction)


# -- modules ---------------------------------------------------------------------------------------


class ArcFaceLoss(_ProxyLoss):
    """ArcFace, additive angular margin; the math is `arcface_loss`.

    Args:
        margin: $m$ in radians, in `[0, π/2]` (PML: degrees).
        scale: $s > 0$.
        num_classes: the number of proxies, for use outside lossforge's training (which sizes them from
            the data through `prepare`); with `embedding_dim` or neither.
        embedding_dim: the proxies' width outside lossforge's training; with `num_classes` or neither.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$; proxies $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> torch.manual_seed(0) and None
        >>> loss = ArcFaceLoss(num_classes=3, embedding_dim=2)
        >>> value = loss(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))
        >>> value.shape, value.requires_grad, tuple(loss.proxies.shape)
        (torch.Size([]), True, (3, 2))
    """

    name = "arcface"
    # Scaled-softmax classifiers' weights train like the network's other layers (the paper trains them
    # together), so no multiplier.
    lr_multiplier = 1.0
    search_space: ClassVar[dict[str, Prior]] = {
        "margin": FloatRange(0.1, 0.8),  # around the paper's 0.5 rad; past ~0.8 training often stalls
        "scale": FloatRange(8.0, 128.0, log=True),
    }

    def __init__(
        self,
        *,
        margin: float = 0.5,
        scale: float = 64.0,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        _check_arcface(margin, scale, reduction)
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.margin, self.scale = float(margin), float(scale)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any = None) -> Tensor:
        proxies = self._checked(embeddings, labels, indices_tuple)
        return _arcface(embeddings, labels, proxies, self.margin, self.scale, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, scale={self.scale}, {self._shape_repr()}, reduction={self.reduction!r}"


class CosFaceLoss(_ProxyLoss):
    """CosFace, additive cosine margin; the math is `cosface_loss`.

    Args:
        margin: $m \\ge 0$.
        scale: $s > 0$.
        num_classes: the number of proxies outside lossforge's training; with `embedding_dim` or neither.
        embedding_dim: the proxies' width outside lossforge's training; with `num_classes` or neither.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$; proxies $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> loss = CosFaceLoss(margin=0.5, scale=2.0, num_classes=2, embedding_dim=2)
        >>> with torch.no_grad():
        ...     _ = loss.proxies.copy_(torch.eye(2))
        >>> loss(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
        tensor(0.3133, grad_fn=<MeanBackward0>)
    """

    name = "cosface"
    lr_multiplier = 1.0  # as ArcFace: a classifier's weights
    search_space: ClassVar[dict[str, Prior]] = {
        "margin": FloatRange(0.05, 0.6),  # around the paper's 0.35
        "scale": FloatRange(8.0, 128.0, log=True),
    }

    def __init__(
        self,
        *,
        margin: float = 0.35,
        scale: float = 64.0,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        _check_cosface(margin, scale, reduction)
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.margin, self.scale = float(margin), float(scale)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any = None) -> Tensor:
        proxies = self._checked(embeddings, labels, indices_tuple)
        return _cosface(embeddings, labels, proxies, self.margin, self.scale, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, scale={self.scale}, {self._shape_repr()}, reduction={self.reduction!r}"


class NormalizedSoftmaxLoss(_ProxyLoss):
    """Normalised softmax (NormFace); the math is `normalized_softmax_loss`.

    Args:
        temperature: $T > 0$.
        num_classes: the number of proxies outside lossforge's training; with `embedding_dim` or neither.
        embedding_dim: the proxies' width outside lossforge's training; with `num_classes` or neither.
        reduction: `"mean"`, `"sum"` or `"none"` (per sample).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$; proxies $(C, D)$
        - Output: scalar, or $(N,)$ for `"none"`

    Examples:
        >>> loss = NormalizedSoftmaxLoss(temperature=1.0, num_classes=2, embedding_dim=2)
        >>> with torch.no_grad():
        ...     _ = loss.proxies.copy_(torch.eye(2))
        >>> loss(torch.tensor([[3.0, 0.0]]), torch.tensor([0]))  # cosines 1 and 0
        tensor(0.3133, grad_fn=<MeanBackward0>)
    """

    name = "normalized_softmax"
    lr_multiplier = 1.0  # as ArcFace: a classifier's weights
    search_space: ClassVar[dict[str, Prior]] = {"temperature": FloatRange(0.01, 1.0, log=True)}

    def __init__(
        self,
        *,
        temperature: float = 0.05,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        _check_normalized_softmax(temperature, reduction)
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction)
        self.temperature = float(temperature)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any = None) -> Tensor:
        proxies = self._checked(embeddings, labels, indices_tuple)
        return _normalized_softmax(embeddings, labels, proxies, self.temperature, self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, {self._shape_repr()}, reduction={self.reduction!r}"
