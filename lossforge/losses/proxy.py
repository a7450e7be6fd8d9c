"""Proxy and classifier-based metric losses: ArcFace, CosFace, normalised softmax, ProxyNCA, Proxy Anchor.

Each compares every embedding with **one learnable vector per class** — a class proxy, or the row of a
normalised classifier's weight matrix — instead of with the other embeddings of the batch. The vectors are
the loss's own parameters, `proxies` of shape `(C, D)`: the optimizer trains them (in a group of their
own at `lr * lr_multiplier`, no weight decay: [lossforge.training.optim][]), checkpoints hold them and
`resume=` restores them. They are sized from the data: lossforge's training calls
`prepare(targets=…, num_classes=C, embedding_dim=D)` (see [lossforge.contract.LossPlugin][]), which
draws them from the run's seeded generator; used on its own, a loss takes `num_classes` and
`embedding_dim` in its constructor instead.

Called `loss(embeddings (N, D), labels (N,), indices_tuple=None)` like the other metric losses. They
take no pairs or triplets: a miner's `indices_tuple` is refused with a `LossInputError` (so
`miner=...` with one of them fails at its first step, naming the loss). Every loss here compares
L2-*normalised* embeddings with L2-normalised proxies (cosine similarity), so `distance = "cosine"`
and retrieval is evaluated by cosine.

Against pytorch-metric-learning (PML) 2.9, the same losses with these conventions (the tests compare
them on the same weights):

* PML stores ArcFace's, CosFace's and normalised softmax's weights as `W` of shape `(D, C)`; here
  they are `proxies` `(C, D)` (`pml.W.data = proxies.T`). PML names `embedding_dim`
  `embedding_size`.
* ArcFace's `margin` is in **radians** here (the paper's m = 0.5); PML's is in degrees (default 28.6°,
  i.e. 0.499 rad).
* ProxyNCA: PML's softmax includes the true class's proxy in the denominator (as ProxyNCA++ does; the
  2017 paper left it out), over the squared Euclidean distance of normalised vectors; so does lossforge.
  PML drops a sample whose probability underflows to 0; lossforge computes the log-softmax directly, so
  it never underflows and every sample counts.
* Proxy Anchor's `"none"` here returns one value per proxy, scaled so that their mean is the loss
  (PML's divisor reducer has no per-element form).
* PML accepts a miner's tuples and turns them into per-sample weights; lossforge refuses them.

Defaults are PML's (= the papers'): ArcFace m = 0.5 rad, s = 64; CosFace m = 0.35, s = 64; normalised
softmax T = 0.05; ProxyNCA softmax scale 1; Proxy Anchor δ = 0.1, α = 32. Proxies start as PML's do:
standard normal, Proxy Anchor's Kaiming-normal (fan out).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import Loss, LossInputError, Reduction, check_reduction, input_error, reduce, shape

EXPECTED_INPUTS = "embeddings (N, D) of a floating dtype and integer labels (N,)"


# -- input checks ------------------------------------------------------------------------------------


def _check_inputs(loss_name: str, embeddings: Tensor, labels: Tensor, proxies: Tensor, *, scan: bool = True) -> None:
    """Shapes and dtypes of embeddings, labels and proxies; with `scan`, labels in `[0, C)`."""
    is_integer = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    if not (
        embeddings.dim() == 2
        and embeddings.is_floating_point()
        and labels.dim() == 1
        and is_integer
        and labels.shape[0] == embeddings.shape[0]
    ):
        got = f"embeddings {shape(embeddings)} {embeddings.dtype} and labels {shape(labels)} {labels.dtype}"
        raise input_error(loss_name, EXPECTED_INPUTS, got)
    if proxies.dim() != 2 or proxies.shape[1] != embeddings.shape[1]:
        raise input_error(
            loss_name,
            f"{proxies.shape[1]}-d embeddings, the width of its {proxies.shape[0]} class proxies {shape(proxies)}",
            f"embeddings {shape(embeddings)}; a model with another embedding size needs a loss prepared for it",
        )
    if scan and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= proxies.shape[0]):
        raise input_error(
            loss_name,
            f"labels in [0, {proxies.shape[0] - 1}] (it has proxies for {proxies.shape[0]} classes)",
            f"labels from {int(labels.min())} to {int(labels.max())}",
        )


def _check_indices(loss_name: str, indices_tuple: Any) -> None:
    if indices_tuple is not None:
        raise LossInputError(
            f"{loss_name}: expected indices_tuple=None, got a miner's tuples: it compares each embedding with "
            f"its class proxies, not pairs or triplets. Drop the miner (miner=null)."
        )


def _cosine(embeddings: Tensor, proxies: Tensor) -> Tensor:
    """Cosine similarity of every embedding with every proxy, in the embeddings' dtype."""
    return F.normalize(embeddings, dim=1) @ F.normalize(proxies.to(embeddings.dtype), dim=1).T  # (N, C)


def _check_positive(loss_name: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{loss_name}: expected `{key}` > 0, got {value}")


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


def _check_proxy_nca(softmax_scale: float, reduction: str) -> None:
    _check_positive("proxy_nca", softmax_scale=softmax_scale)
    check_reduction("proxy_nca", reduction)


def _check_proxy_anchor(margin: float, alpha: float, reduction: str) -> None:
    if not (isinstance(margin, int | float) and 0 <= margin <= 1):
        raise ValueError(f"proxy_anchor: expected `margin` in [0, 1] (a cosine difference), got {margin}")
    _check_positive("proxy_anchor", alpha=alpha)
    check_reduction("proxy_anchor", reduction)


# -- modules ---------------------------------------------------------------------------------------


class _ProxyLoss(Loss):
    """What the five share: the `proxies` parameter — made by `prepare` or the constructor, checked
    against a checkpoint's — and the input checks."""

    tasks: ClassVar[tuple[Task, ...]] = (Task.METRIC,)
    tuple_kind: ClassVar[str | None] = None  # no pairs or triplets: the proxies are the other side
    distance: ClassVar[str] = "cosine"
    """Everything here compares normalised vectors, so retrieval is evaluated by cosine too."""
    lr_multiplier: ClassVar[float] = 1.0
    """The proxies' learning rate is `optimizer.lr` times this (`optimizer.loss_lr_multiplier` overrides)."""

    proxies: nn.Parameter | None

    def __init__(self, *, num_classes: int | None, embedding_dim: int | None, reduction: Reduction) -> None:
        super().__init__(reduction=reduction)
        self.register_parameter("proxies", None)
        if (num_classes is None) != (embedding_dim is None):
            raise ValueError(
                f"{self.name}: expected both `num_classes` and `embedding_dim` or neither (then `prepare` sizes "
                f"the proxies from the data), got num_classes={num_classes}, embedding_dim={embedding_dim}"
            )
        if num_classes is not None and embedding_dim is not None:
            self._make(num_classes, embedding_dim)

    def _make(self, num_classes: int, embedding_dim: int) -> None:
        for key, value in (("num_classes", num_classes), ("embedding_dim", embedding_dim)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{self.name}: expected `{key}` to be an int >= 1, got {value!r}")
        proxies = torch.empty(num_classes, embedding_dim)
        self._initialize(proxies)
        self.proxies = nn.Parameter(proxies)

    def _initialize(self, proxies: Tensor) -> None:
        """Draw the initial proxies from torch's global generator (the run has seeded it)."""
        nn.init.normal_(proxies)

    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        """Make the proxies `(num_classes, embedding_dim)`; keep existing ones of that shape (a second call,
        or sizes given to the constructor); an error naming both shapes if they differ. A binary dataset
        says `num_classes=1` (one output); its labels 0 and 1 get a proxy each, as do any labels
        `targets` holds beyond `num_classes`."""
        if isinstance(targets, Tensor) and targets.numel() and not targets.is_floating_point():
            num_classes = max(num_classes, int(targets.max()) + 1)
        if embedding_dim is None:
            raise ValueError(
                f"{self.name}: `prepare` needs `embedding_dim`, the width of the model's embeddings, to size "
                f"its class proxies (lossforge's training passes it for the metric task)"
            )
        if self.proxies is None:
            self._make(num_classes, embedding_dim)
        elif tuple(self.proxies.shape) != (num_classes, embedding_dim):
            raise ValueError(
                f"{self.name}: its proxies are for {self._sizes(self.proxies.shape)}, but the data and model have "
                f"{self._sizes((num_classes, embedding_dim))}; build it with num_classes={num_classes}, "
                f"embedding_dim={embedding_dim}, or leave both out"
            )

    @staticmethod
    def _sizes(size: tuple[int, ...] | torch.Size) -> str:
        return f"{size[0]} classes of {size[1]}-d embeddings"

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A loss not prepared yet takes the checkpoint's size; a prepared one of another size is a changed
        # dataset or model, said in words rather than as torch's size-mismatch text.
        saved = state_dict.get(prefix + "proxies")
        if isinstance(saved, Tensor):
            if self.proxies is None:
                self.proxies = nn.Parameter(torch.empty(saved.shape, dtype=saved.dtype))
            elif saved.shape != self.proxies.shape:
                raise LossInputError(
                    f"{self.name}: the checkpoint holds proxies for {self._sizes(saved.shape)}, but this run's "
                    f"data and model have {self._sizes(self.proxies.shape)}: resume with the dataset and model "
                    f"(embedding_dim) the checkpoint was trained with"
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _checked(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any) -> Tensor:
        _check_indices(self.name, indices_tuple)
        if self.proxies is None:
            raise LossInputError(
                f"{self.name}: has no class proxies yet: call prepare(targets=..., num_classes=C, embedding_dim=D) "
                f"first (lossforge's training does), or build it with num_classes and embedding_dim"
            )
        _check_inputs(self.name, embeddings, labels, self.proxies, scan=self.scan_targets)
        return self.proxies

    def _shape_repr(self) -> str:
        if self.proxies is None:
            return "num_classes=None, embedding_dim=None"  # sized by `prepare`
        return f"num_classes={self.proxies.shape[0]}, embedding_dim={self.proxies.shape[1]}"


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
