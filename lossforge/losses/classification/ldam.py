"""LDAM: label-distribution-aware margins (Cao et al. 2019), larger for rarer classes.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import (
    Loss,
    Reduction,
    check_reduction,
    input_error,
    shape,
)
from lossforge.losses.classification.cross_entropy import _fused_cross_entropy
from lossforge.losses.classification.inputs import _check_multiclass
from lossforge.losses.classification.weights import _adopt_prepared, class_counts


def ldam_margins(counts: Tensor, max_margin: float = 0.5) -> Tensor:
    r"""LDAM's per-class margins (Cao et al., 2019): $\Delta_c \propto n_c^{-1/4}$, the rarest class's
    margin `max_margin`.

    Examples:
        >>> ldam_margins(torch.tensor([16.0, 1.0]), max_margin=0.5)
        tensor([0.2500, 0.5000], dtype=torch.float64)
    """
    missing = (counts <= 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"LDAM margins (n_c^(-1/4)) need every class in the training targets; class(es) {missing} have no samples"
        )
    margins = counts.to(torch.float64) ** -0.25
    return margins * (max_margin / margins.max())


def ldam_loss(
    logits: Tensor,
    target: Tensor,
    margins: Tensor,
    *,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Label-distribution-aware margin loss (Cao et al., 2019): cross-entropy with the true class's logit
    lowered by its class's margin, so rare classes must win by more.

    $$
    \ell_i = -\log \frac{e^{s (z_{i y_i} - \Delta_{y_i})}}{e^{s (z_{i y_i} - \Delta_{y_i})}
        + \sum_{j \ne y_i} e^{s z_{ij}}}
    $$

    Args:
        logits: $z$, `(N, C)`.
        target: class indices `(N,)`.
        margins: $\Delta$, `(C,)` (see [ldam_margins][lossforge.losses.classification.ldam.ldam_margins]).
        scale: $s > 0$, applied after the margin.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample `(N,)` values.
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> logits = torch.tensor([[1.0, 1.0]])
        >>> round(ldam_loss(logits, torch.tensor([0]), torch.tensor([0.5, 0.25])).item(), 4)  # softplus(0.5)
        0.9741
    """
    check_reduction("ldam", reduction)
    _, target = _check_multiclass("ldam", logits, target, soft=False, scan=check_values)
    if margins.shape != (logits.shape[1],):
        raise input_error("ldam", f"logits with one class per margin ({margins.numel()})", shape(logits))
    true_margin = margins.to(device=logits.device, dtype=logits.dtype)[target]  # (N,)
    adjusted = logits.scatter_add(1, target[:, None], -true_margin[:, None])  # (N, C)
    return _fused_cross_entropy(scale * adjusted, target, 0.0, reduction)


class LDAMLoss(Loss):
    r"""LDAM loss, registered as `ldam`: cross-entropy with a larger margin for rarer classes.

    $$
    \ell_i = -\log \operatorname{softmax}\left(s (z_i - \Delta_{y_i} e_{y_i})\right)_{y_i}, \qquad
    \Delta_c \propto n_c^{-1/4}
    $$

    Cao et al. (2019) derive the $n_c^{-1/4}$ margins from a generalisation bound;
    [prepare][lossforge.losses.classification.ldam.LDAMLoss.prepare] (which the training pipeline calls once with the
    training labels) computes them, the rarest class's margin `max_margin`. The paper applies it to cosine logits (a
    normalised last layer, $s = 30$); the lecture's MLP has unnormalised logits, which can grow to make any fixed margin
    small, hence $s = 1$ by default and `max_margin` in the search space. Their *deferred re-weighting* (DRW:
    class-balanced weights switched on late in training) needs the epoch, which the loss contract does
    not hand a loss; it is not offered here.

    Args:
        max_margin: the rarest class's margin $\max_c \Delta_c > 0$, in logit units.
        scale: $s > 0$, multiplies the logits after the margin.
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: logits `(N, C)`; target: class indices `(N,)`.
        - output: a scalar, or `(N,)` for `reduction="none"`.

    Examples:
        >>> loss = LDAMLoss(max_margin=0.5)
        >>> loss.prepare(targets=torch.tensor([0] * 16 + [1]), num_classes=2)
        >>> loss.margins
        tensor([0.2500, 0.5000])
        >>> round(loss(torch.tensor([[1.0, 1.0]]), torch.tensor([1])).item(), 4)  # softplus(0.5)
        0.9741
    """

    name: ClassVar[str] = "ldam"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS,)
    # The paper's 0.5 sits in the middle of a log-uniform decade and a half of logit units.
    search_space: ClassVar[dict[str, Prior]] = {"max_margin": FloatRange(0.05, 2.0, log=True)}
    margins: Tensor | None

    def __init__(self, *, max_margin: float = 0.5, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        if not max_margin > 0:  # also rejects NaN
            raise ValueError(f"{self.name}: expected `max_margin` > 0 (the rarest class's margin), got {max_margin}")
        if not scale > 0:
            raise ValueError(f"{self.name}: expected `scale` > 0 (multiplies the logits), got {scale}")
        self.max_margin, self.scale = float(max_margin), float(scale)
        self.register_buffer("margins", None)

    def prepare(self, *, targets: Tensor, num_classes: int) -> None:
        """Compute the per-class margins from the training labels.

        Args:
            targets: the training set's class indices `(N,)`.
            num_classes: $C$.
        """
        try:
            margins = ldam_margins(class_counts(targets, num_classes), self.max_margin)
        except ValueError as error:
            raise ValueError(f"{self.name}: {error}") from None
        self.margins = margins.to(device=targets.device, dtype=torch.get_default_dtype())

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        _adopt_prepared(self, "margins", state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if self.margins is None:
            raise RuntimeError(
                f"{self.name}: the margins are computed from the training labels; call "
                f"`loss.prepare(targets=train_targets, num_classes=C)` before the first forward (the training "
                f"pipeline does)"
            )
        return ldam_loss(
            prediction,
            target,
            self.margins,
            scale=self.scale,
            reduction=self.reduction,
            check_values=self.scan_targets,
        )

    def extra_repr(self) -> str:
        return f"max_margin={self.max_margin}, scale={self.scale}, {super().extra_repr()}"
