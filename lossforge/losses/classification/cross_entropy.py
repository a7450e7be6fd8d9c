"""The cross-entropy family: cross-entropy with label smoothing, and class-weighted cross-entropy.

Input conventions: [lossforge.losses.classification][].
"""

from __future__ import annotations

from typing import ClassVar

import torch  # noqa: F401  (the docstring examples run with this module's names)
import torch.nn.functional as F
from torch import Tensor

from lossforge.contract import Categorical, FloatRange, Prior, Task
from lossforge.losses.base import (
    Loss,
    Reduction,
    as_float,
    check_reduction,
    input_error,
    reduce,
    shape,
)
from lossforge.losses.classification.inputs import (
    _check_label_smoothing,
    _check_multiclass,
    _nonnegative_weights,
    _reduce_weighted,
)
from lossforge.losses.classification.weights import (
    WEIGHT_SCHEMES,
    _adopt_prepared,
    _check_beta,
    _check_scheme,
    scheme_weights,
)


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Softmax cross-entropy (natural log), from class indices or probability rows.

    $$
    \ell_i = -\sum_c q_{ic} \log \operatorname{softmax}(s_i)_c, \qquad
    q_i = (1 - \varepsilon)\, \operatorname{target}_i + \varepsilon / C
    $$

    where a class index $y_i$ stands for its one-hot row; with $\varepsilon = 0$ and index
    targets this is $-\log \operatorname{softmax}(s_i)_{y_i}$. Matches `torch.nn.CrossEntropyLoss`.

    Args:
        logits: `(N, C)`.
        target: class indices `(N,)` or probabilities / one-hot rows `(N, C)`.
        label_smoothing: $\varepsilon \in [0, 1)$.
        reduction: `"mean"`, `"sum"`, or `"none"` for the per-sample `(N,)` values.
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> round(cross_entropy(logits, torch.tensor([0, 2])).item(), 4)
        0.8955
    """
    label_smoothing = _check_label_smoothing(label_smoothing)
    check_reduction("cross_entropy", reduction)
    soft, target = _check_multiclass("cross_entropy", logits, target, soft=True, scan=check_values)
    return _fused_cross_entropy(logits, as_float(target, logits) if soft else target, label_smoothing, reduction)


def _fused_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float, reduction: str) -> Tensor:
    """`cross_entropy` on checked input: torch's fused log_softmax + NLL (one pass forward and back),
    with the mean of an empty batch 0 (still attached to the graph) where torch's is NaN."""
    if logits.shape[0] == 0:
        return reduce(logits.sum(dim=1), reduction)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction=reduction)


def weighted_cross_entropy(
    logits: Tensor, target: Tensor, weights: Tensor, *, reduction: Reduction = "mean", check_values: bool = True
) -> Tensor:
    r"""Class-weighted cross-entropy; `"mean"` is the weighted mean, for every kind of target.

    $$
    \ell_i = -\sum_c \alpha_c\, q_{ic} \log \operatorname{softmax}(s_i)_c, \qquad
    \text{mean} = \frac{\sum_i \ell_i}{\sum_i \sum_c \alpha_c q_{ic}}
    $$

    For a class index (or its one-hot row) this is $-\alpha_{y_i} \log p_{i y_i}$ normalised by
    $\sum_i \alpha_{y_i}$, as `torch.nn.CrossEntropyLoss(weight=...)` does for indices. For
    probability targets torch divides by $N$ instead, so one-hot rows and the indices they encode
    give different losses there; here the weight mass $\sum_c \alpha_c q_{ic}$ keeps them equal.

    Args:
        logits: `(N, C)`.
        target: class indices `(N,)` or probabilities / one-hot rows `(N, C)`.
        weights: per-class weights $\alpha$, `(C,)`, non-negative (not checked here).
        reduction: `"mean"` (weighted, as above), `"sum"`, or `"none"` for the per-sample
            weighted values $\ell_i$, `(N,)`.
        check_values: scan the target values (labels in range); `False` for data validated up front.

    Examples:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> weights = torch.tensor([1.0, 3.0])
        >>> indices = weighted_cross_entropy(logits, torch.tensor([0, 0]), weights)
        >>> one_hot = weighted_cross_entropy(logits, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), weights)
        >>> round(indices.item(), 4) == round(one_hot.item(), 4)
        True
    """
    check_reduction("weighted_cross_entropy", reduction)
    soft, target = _check_multiclass("weighted_cross_entropy", logits, target, soft=True, scan=check_values)
    if weights.shape != (logits.shape[1],):
        raise input_error(
            "weighted_cross_entropy", f"logits with one class per weight ({weights.numel()})", shape(logits)
        )
    weights = weights.to(device=logits.device, dtype=logits.dtype)
    if soft:
        weighted_target = as_float(target, logits) * weights  # (N, C)
        weight_mass = weighted_target.sum(dim=1)
        weighted_values = -(weighted_target * logits.log_softmax(dim=1)).sum(dim=1)
    else:
        weight_mass = weights[target]  # (N,)
        # torch's "none" values are α_y · (−log p_y); only its "mean" differs (NaN for an all-zero batch)
        weighted_values = F.cross_entropy(logits, target, weight=weights, reduction="none")
    return _reduce_weighted(weighted_values, weight_mass, reduction)


class CrossEntropyLoss(Loss):
    r"""Softmax cross-entropy, registered as `cross_entropy`.

    $$
    \ell_i = -\log \operatorname{softmax}(s_i)_{y_i}
    $$

    or $-\sum_c q_{ic} \log \operatorname{softmax}(s_i)_c$ for probability rows $q_i$; with
    label smoothing $\varepsilon$ the target becomes $(1 - \varepsilon) q_i + \varepsilon / C$.

    Args:
        label_smoothing: $\varepsilon \in [0, 1)$.
        reduction: `"mean"`, `"sum"` or `"none"`.

    Shape:
        - prediction: logits `(N, C)`; target: class indices `(N,)` or probabilities `(N, C)`.
        - output: a scalar, or `(N,)` for `reduction="none"`.

    Examples:
        >>> loss = CrossEntropyLoss(reduction="sum")
        >>> round(loss(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item(), 4)  # log 2
        0.6931
    """

    name: ClassVar[str] = "cross_entropy"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS,)
    # 0.1 is the usual choice (Szegedy et al. 2016); [0, 0.3] brackets it and includes plain cross-entropy.
    search_space: ClassVar[dict[str, Prior]] = {"label_smoothing": FloatRange(0.0, 0.3)}

    def __init__(self, *, label_smoothing: float = 0.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.label_smoothing = _check_label_smoothing(label_smoothing)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(
            prediction,
            target,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
            check_values=self.scan_targets,
        )

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, {super().extra_repr()}"


class WeightedCrossEntropyLoss(Loss):
    r"""Class-weighted cross-entropy, registered as `weighted_cross_entropy`.

    $$
    \ell_i = -\alpha_{y_i} \log \operatorname{softmax}(s_i)_{y_i}, \qquad
    \text{mean} = \sum_i \ell_i \Big/ \sum_i \alpha_{y_i}
    $$

    For probability rows $q_i$ the weight of sample $i$ is $\sum_c \alpha_c q_{ic}$, so
    one-hot rows give exactly what their indices give (see
    [weighted_cross_entropy][lossforge.losses.classification.cross_entropy.weighted_cross_entropy]).

    The weights are a list, or computed from the training labels by
    [prepare][lossforge.losses.classification.cross_entropy.WeightedCrossEntropyLoss.prepare], which the training
    pipeline calls once before training: `"inverse_frequency"` ($w_c = N / (C n_c)$) or `"effective_number"`
    ($w_c \propto (1-\beta)/(1-\beta^{n_c})$, summing to $C$). They are a buffer, so `.to(device)` moves them.

    `weights="effective_number"` is Cui et al.'s (2019) class-balanced softmax cross-entropy: each
    sample's term $-w_{y_i} \log p_{i y_i}$ (`"none"`, `"sum"`) is their
    $\mathrm{CB}_{\text{softmax}}$ exactly, with their normalisation $\sum_c w_c = C$;
    `"mean"` divides the sum by the batch's weight mass $\sum_i w_{y_i}$ (as torch does), which
    rescales a batch's loss but not the relative weight of its samples. `beta = 0` is plain
    cross-entropy; $\beta \to 1$ approaches inverse frequency. The class-balanced *focal* loss is
    `focal` with `alpha="effective_number"`.

    Args:
        weights: a list of `C` non-negative per-class weights, or `"inverse_frequency"` /
            `"effective_number"`.
        beta: $\beta \in [0, 1)$ for `"effective_number"`.
        reduction: `"mean"` (the weighted mean above), `"sum"` or `"none"`.

    Shape:
        - prediction: logits `(N, C)`; target: class indices `(N,)` or probabilities `(N, C)`.
        - output: a scalar, or the per-sample weighted values $\ell_i$, `(N,)`, for
          `reduction="none"`.

    Examples:
        >>> loss = WeightedCrossEntropyLoss()  # inverse frequency
        >>> loss.prepare(targets=torch.tensor([0, 0, 0, 1]), num_classes=2)
        >>> loss.class_weights
        tensor([0.6667, 2.0000])
        >>> round(loss(torch.zeros(2, 2), torch.tensor([0, 1])).item(), 4)  # log 2
        0.6931
    """

    name: ClassVar[str] = "weighted_cross_entropy"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS,)
    mean_is_weighted: ClassVar[bool] = True
    """"mean" is Σ w_i ℓ_i / Σ w_i, not the mean of the "none" values (read by lossforge.testing)."""
    # Either scheme; beta over Cui et al. (2019)'s grid, whose values differ by their 1 - beta's magnitude
    # (ignored by inverse_frequency). A list of weights is per data set, so it is no prior.
    search_space: ClassVar[dict[str, Prior]] = {
        "weights": Categorical(WEIGHT_SCHEMES),
        "beta": Categorical((0.9, 0.99, 0.999, 0.9999)),
    }
    class_weights: Tensor | None

    def __init__(
        self,
        *,
        weights: list[float] | str = "inverse_frequency",
        beta: float = 0.999,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.beta = _check_beta(self.name, beta)
        if isinstance(weights, str):
            self.scheme: str | None = _check_scheme(self.name, "weights", weights, "a list of per-class weights")
            self.register_buffer("class_weights", None)
        else:
            self.scheme = None
            self.register_buffer("class_weights", _nonnegative_weights(self.name, "weights", weights))

    def prepare(self, *, targets: Tensor, num_classes: int) -> None:
        """Compute the class weights from the training targets (or check a given list's length).

        Args:
            targets: the training set's class indices `(N,)` or probability rows `(N, C)`.
            num_classes: $C$.
        """
        if self.scheme is None:
            assert self.class_weights is not None  # given as a list: set in __init__
            if self.class_weights.numel() != num_classes:
                raise ValueError(
                    f"{self.name}: got {self.class_weights.numel()} `weights` but the data has {num_classes} classes"
                )
            return
        self.class_weights = scheme_weights(self.name, self.scheme, targets, num_classes, beta=self.beta)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        _adopt_prepared(self, "class_weights", state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if self.class_weights is None:
            raise RuntimeError(
                f"{self.name}: weights={self.scheme!r} are computed from the training labels; call "
                f"`loss.prepare(targets=train_targets, num_classes=C)` before the first forward (the "
                f"training pipeline does), or give `weights` as a list"
            )
        return weighted_cross_entropy(
            prediction, target, self.class_weights, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        weights = self.scheme if self.scheme is not None else "given"
        return f"weights={weights!r}, beta={self.beta}, {super().extra_repr()}"
