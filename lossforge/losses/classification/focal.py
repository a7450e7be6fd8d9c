"""Focal loss (Lin et al. 2017), binary, multiclass and multilabel, with optional class-balanced `alpha`.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import (
    Loss,
    Reduction,
    check_reduction,
    input_error,
    reduce,
    shape,
)
from lossforge.losses.classification.cross_entropy import _fused_cross_entropy
from lossforge.losses.classification.inputs import (
    _check_alpha,
    _check_gamma,
    _check_labels,
    _check_multiclass,
    _reduce_weighted,
)
from lossforge.losses.classification.weights import _adopt_prepared, _check_beta, _check_scheme, scheme_weights


def focal_loss(
    prediction: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | Tensor | None = None,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Focal loss (Lin et al., 2017): cross-entropy scaled down on samples already classified well.

    $$
    \ell_i = -\alpha_{t}\, (1 - p_{t})^\gamma \log p_{t}
    $$

    with $p_t$ the probability of the true class: `sigmoid` of the score for binary input
    (scores `(N,)`), `softmax` of the logits for multiclass input (`(N, C)`). Nothing ever
    differentiates $(1-p)^\gamma$ with respect to $p$, whose derivative is infinite at
    $p = 1$ for $\gamma < 1$: binary input computes $\log p_t$ and
    $\log(1 - p_t)$ with `logsigmoid` and $(1-p_t)^\gamma = \exp(\gamma \log(1 - p_t))$;
    multiclass input takes $1 - p_t$ as the sum of the other classes' probabilities (exact where
    $p_t$ rounds to 1) and its gradient in closed form in logit space, in about as many passes over
    the logits as cross-entropy. Values and gradients stay finite for any $\gamma \ge 0$ and logits
    of any size. $\gamma = 0$ is (weighted) cross-entropy exactly.

    `alpha`: `None` ($\alpha_t = 1$); a float in [0, 1] for binary input ($\alpha$ for
    positives, $1 - \alpha$ for negatives); or a list of non-negative per-class weights (`C` of
    them for multiclass, 2 for binary). With `alpha` given, `"mean"` is the weighted mean
    $\sum_i \alpha_{t,i} (1-p_{t,i})^\gamma (-\log p_{t,i}) / \sum_i \alpha_{t,i}$, so with
    $\gamma = 0$ it equals `weighted_cross_entropy` (torchvision's `sigmoid_focal_loss` divides
    by $N$ instead).

    Args:
        prediction: binary scores `(N,)` or multiclass logits `(N, C)`.
        target: binary labels `(N,)` in {0, 1}, or class indices `(N,)`.
        gamma: focusing parameter $\gamma \ge 0$.
        alpha: class weighting, see above.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample `(N,)` values
            $\ell_i$ (with $\alpha_t$ applied).
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> from lossforge.losses.classification import cross_entropy
        >>> logits = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
        >>> labels = torch.tensor([0, 1])
        >>> torch.allclose(focal_loss(logits, labels, gamma=0.0), cross_entropy(logits, labels))
        True
        >>> round(focal_loss(torch.tensor([30.0]), torch.tensor([1.0]), gamma=0.5).item(), 6)
        0.0
    """
    gamma = _check_gamma(gamma)
    check_reduction("focal", reduction)
    alpha = _check_alpha(alpha)
    if prediction.dim() == 1:
        _check_labels("focal", prediction, target, scan=check_values)
        true_class = (target > 0).long()
        true_score = torch.where(target > 0, prediction, -prediction)  # p_t = sigmoid(true_score)
        log_p_true = F.logsigmoid(true_score)
        log_p_other = F.logsigmoid(-true_score)  # log(1 - p_t)
        values = -log_p_true
        if gamma:  # skipped at γ = 0 so that 0 · log(1 - p_t) cannot become NaN when 1 - p_t underflows
            values = torch.exp(gamma * log_p_other) * values
    else:
        _, target = _check_multiclass("focal", prediction, target, soft=False, scan=check_values)
        if prediction.shape[1] < 2:
            raise input_error("focal", "logits (N, C) with C >= 2", shape(prediction))
        true_class = target
        if not gamma:  # cross-entropy, computed as cross_entropy computes it: bit for bit the same
            if alpha is None:  # the input is checked already: no second scan of the targets
                return _fused_cross_entropy(prediction, target, 0.0, reduction)
            values = F.cross_entropy(prediction, target, reduction="none")
        else:
            values = _MulticlassFocal.apply(prediction, target, gamma)  # (N,)
    if alpha is None:
        return reduce(values, reduction)
    alpha_t = _focal_alpha_t(alpha, prediction, true_class)
    return _reduce_weighted(alpha_t * values, alpha_t, reduction)


class _MulticlassFocal(torch.autograd.Function):
    r"""Per-sample multiclass focal values $-(1 - p_t)^\gamma \log p_t$ from logits `(N, C)`, with
    the gradient in closed form.

    Autograd through `log_softmax`, a masked `logsumexp` over the other classes and `exp` makes about
    ten passes over the `(N, C)` logits; this makes four (`log_softmax`, `exp`, a sum, and one for
    the gradient) and keeps one `(N, C)` tensor, the softmax, as `log_softmax`'s own backward does.

    With $q = 1 - p_t = \sum_{j \ne t} p_j$ (a sum of positive terms: exact where $p_t$
    rounds to 1) and $g = q^\gamma (\gamma\, p_t \log p_t / q - 1)$, the gradient is
    $\partial \ell / \partial s_j = g\, (\delta_{jt} - p_j)$. $\log p_t / q$ tends to
    $-1$ as $q \to 0$ and is taken as `log1p(-q) / q` for $q < 1/2$, so neither
    values nor gradients overflow for any $\gamma > 0$ or logit size.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, logits: Tensor, target: Tensor, gamma: float) -> Tensor:
        index = target[:, None]  # (N, 1)
        probabilities = logits.log_softmax(dim=1)  # (N, C), log-probabilities for now
        log_p_true = probabilities.gather(1, index).squeeze(1)  # (N,)
        probabilities.exp_()
        p_true = probabilities.gather(1, index)  # (N, 1)
        other = probabilities.scatter_(1, index, 0.0).sum(dim=1)  # q = Σ_{j≠t} p_j, (N,)
        probabilities.scatter_(1, index, p_true)
        p_true = p_true.squeeze(1)
        focus = other.pow(gamma)  # (1 - p_t)^γ
        log_p_true_over_other = torch.where(
            other > 0, torch.where(other < 0.5, torch.log1p(-other), log_p_true) / other, -1.0
        )
        ctx.save_for_backward(probabilities, index, focus * (gamma * p_true * log_p_true_over_other - 1))
        return -focus * log_p_true

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_values: Tensor) -> tuple[Tensor, None, None]:
        probabilities, index, g = ctx.saved_tensors
        scale = (grad_values * g)[:, None]  # (N, 1)
        grad_logits = probabilities * -scale  # (N, C): g (δ_jt − p_j), one pass
        return grad_logits.scatter_add_(1, index, scale), None, None


def _focal_alpha_t(alpha: Tensor, prediction: Tensor, true_class: Tensor) -> Tensor:
    """Each sample's α_t, `(N,)`, after checking `alpha` fits the kind of input."""
    alpha = alpha.to(device=prediction.device, dtype=prediction.dtype)
    binary = prediction.dim() == 1
    if alpha.dim() == 0:
        if not binary:
            raise input_error(
                "focal",
                "binary scores (N,) for a float `alpha` (multiclass takes a list of per-class weights)",
                f"logits {shape(prediction)}",
            )
        return torch.where(true_class == 1, alpha, 1 - alpha)
    num_classes = 2 if binary else prediction.shape[1]
    if alpha.numel() != num_classes:
        raise input_error(
            "focal",
            f"one `alpha` weight per class ({num_classes} for {'scores' if binary else 'logits'} {shape(prediction)})",
            f"{alpha.numel()} weights",
        )
    return alpha[true_class]


class FocalLoss(Loss):
    r"""Focal loss, registered as `focal`: binary (sigmoid) or multiclass (softmax) by input shape.

    $$
    \ell_i = -\alpha_t (1 - p_t)^\gamma \log p_t
    $$

    Finite values and gradients for every $\gamma \ge 0$, including $p_t \to 0$ and
    $p_t \to 1$; $\gamma = 0$ is cross-entropy exactly. With `alpha` given, `"mean"` is
    the $\alpha_t$-weighted mean, so $\gamma = 0$ with per-class `alpha` equals
    `weighted_cross_entropy` (see [focal_loss][lossforge.losses.classification.focal.focal_loss]).

    **Class-balanced focal loss** (Cui et al., 2019) is `alpha="effective_number"`:
    [prepare][lossforge.losses.classification.focal.FocalLoss.prepare] (which the training pipeline calls once with the
    training labels) sets $\alpha_c \propto (1-\beta)/(1-\beta^{n_c})$ , summing to $C$, with the same computation as
    `weighted_cross_entropy` ([scheme_weights][lossforge.losses.classification.weights.scheme_weights]);
    `"inverse_frequency"` works too. On binary input the two classes are the negatives and the positives (the sigmoid
    variant), so the weights are `[α_negative, α_positive]`. From the command line:
    `python -m lossforge loss=focal loss.alpha=effective_number loss.beta=0.999`.

    Args:
        gamma: $\gamma \ge 0$.
        alpha: `None`; a float in [0, 1] (binary: $\alpha$ for positives, $1 - \alpha$
            for negatives); a list of non-negative per-class weights; or `"effective_number"` /
            `"inverse_frequency"`, computed from the training labels by
            [prepare][lossforge.losses.classification.focal.FocalLoss.prepare].
        beta: $\beta \in [0, 1)$ for `alpha="effective_number"` (ignored otherwise).
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: scores `(N,)` with labels `(N,)` in {0, 1}, or logits `(N, C)` with class
          indices `(N,)`.
        - output: a scalar, or `(N,)` for `reduction="none"`.

    Examples:
        >>> loss = FocalLoss(gamma=2.0, alpha=0.25)
        >>> round(loss(torch.tensor([4.0, -1.0]), torch.tensor([1, 1])).item(), 4)
        0.3509
        >>> balanced = FocalLoss(alpha="effective_number", beta=0.5)
        >>> balanced.prepare(targets=torch.tensor([0, 0, 0, 0, 0, 0, 1, 1]), num_classes=2)
        >>> balanced.alpha
        tensor([0.8649, 1.1351])
    """

    name: ClassVar[str] = "focal"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS, Task.BINARY)  # multiclass first: its figure is p_t
    # gamma over Lin et al. (2017)'s range, 0 (cross-entropy) to 5. alpha is not tuned: a float alpha
    # refuses multiclass input and a per-class list depends on the data set, so no one prior serves both
    # (class-balanced focal, alpha="effective_number", is a configuration of its own to compare).
    search_space: ClassVar[dict[str, Prior]] = {"gamma": FloatRange(0.0, 5.0)}
    alpha: Tensor | None

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        alpha: float | list[float] | str | None = None,
        beta: float = 0.999,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = _check_gamma(gamma)
        self.beta = _check_beta(self.name, beta)
        if isinstance(alpha, str):
            alternatives = "None, a float in [0, 1], a list of per-class weights"
            self.scheme: str | None = _check_scheme(self.name, "alpha", alpha, alternatives)
            self.register_buffer("alpha", None)
        else:
            self.scheme = None
            self.register_buffer("alpha", _check_alpha(alpha))
        #: "mean" is the alpha-weighted mean once alpha is given (read by lossforge.testing).
        self.mean_is_weighted = alpha is not None

    def prepare(self, *, targets: Tensor, num_classes: int) -> None:
        """For `alpha="effective_number"` or `"inverse_frequency"`: compute the per-class `alpha`
        from the training labels (nothing to do otherwise).

        Args:
            targets: the training set's class indices `(N,)` (or probability rows `(N, C)`), or binary
                labels `(N,)` in {0, 1}.
            num_classes: $C$, or 1 for binary labels (as the training pipeline passes it).
        """
        if self.scheme is not None:
            self.alpha = scheme_weights(self.name, self.scheme, targets, num_classes, beta=self.beta)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        _adopt_prepared(self, "alpha", state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if self.scheme is not None and self.alpha is None:
            raise RuntimeError(
                f"{self.name}: alpha={self.scheme!r} is computed from the training labels; call "
                f"`loss.prepare(targets=train_targets, num_classes=C)` before the first forward (the "
                f"training pipeline does), or give `alpha` as a list"
            )
        return focal_loss(
            prediction,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            reduction=self.reduction,
            check_values=self.scan_targets,
        )

    def extra_repr(self) -> str:
        alpha = self.scheme if self.scheme is not None else None if self.alpha is None else self.alpha.tolist()
        return f"gamma={self.gamma}, alpha={alpha!r}, beta={self.beta}, {super().extra_repr()}"
