"""Classification losses: hinge, multiclass hinge, cross-entropy (plain and weighted), focal, LDAM and BCE.

Pure functions first, then the registered modules. Input conventions, shared by every loss here:

* binary: scores ``(N,)`` (logits, not probabilities) and targets ``(N,)`` in {0, 1} (``hinge`` also
  takes ±1); targets may be bool, integer or floating.
* multiclass: logits ``(N, C)`` and class indices ``(N,)`` of an integer dtype; ``cross_entropy`` and
  ``weighted_cross_entropy`` also take one-hot or probability rows ``(N, C)``.
* multilabel: logits and {0, 1} targets ``(N, K)`` (``bce``).

Every loss works from logits with ``log_softmax`` / ``logsigmoid``, so large scores stay finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

WEIGHT_SCHEMES = ("inverse_frequency", "effective_number")

# -- input validation ------------------------------------------------------------------------------


def _check_labels(
    loss_name: str,
    scores: Tensor,
    target: Tensor,
    *,
    dims: tuple[int, ...] = (1,),
    plus_minus_one: bool = False,
    scan: bool = True,
) -> None:
    """Binary/multilabel input: floating scores, a target of the same shape, labels in {0, 1} (or ±1).
    ``scan=False`` skips the scan of the label values (dtype and shape are still checked)."""
    if not scores.is_floating_point():
        raise input_error(loss_name, "floating-point scores (logits)", f"dtype {scores.dtype}")
    if target.is_complex():
        raise input_error(loss_name, "real-valued labels", f"dtype {target.dtype}")
    if scores.dim() not in dims or scores.shape != target.shape:
        expected = " or ".join(("scores (N,)", "scores (N, K)")[d - 1] for d in dims)
        raise input_error(loss_name, f"{expected} and labels of the same shape", f"{shape(scores)} and {shape(target)}")
    if target.dtype == torch.bool or not scan:
        return  # 0 or 1 by construction, or validated once up front: nothing to scan
    # The scan is memory-bound (two comparisons over the whole target), so the in-place `or` saves one
    # temporary; the ±1 scan runs only when the {0, 1} one fails.
    valid = target.eq(0).logical_or_(target.eq(1)).all()
    if plus_minus_one and not valid:
        valid = target.eq(-1).logical_or_(target.eq(1)).all()
    if not valid:  # the host sync: a label outside the encoding is a data bug worth stopping for
        allowed = "either all in {0, 1} or all in {-1, 1}" if plus_minus_one else "in {0, 1}"
        found = torch.unique(target.detach())[:6].tolist()
        raise input_error(loss_name, f"labels {allowed}", f"values {found}")


def _check_multiclass(
    loss_name: str, logits: Tensor, target: Tensor, *, soft: bool, scan: bool = True
) -> tuple[bool, Tensor]:
    """Validate multiclass input; return (whether the targets are probability rows, the targets), with
    class indices as int64, which ``gather`` and ``one_hot`` need. ``scan=False`` skips the scans of the
    target values (index range, probability rows); dtypes and shapes are still checked."""
    if not logits.is_floating_point():
        raise input_error(loss_name, "floating-point logits (N, C)", f"dtype {logits.dtype}")
    targets_expected = "class indices (N,)" + (" or probabilities (N, C)" if soft else "")
    if logits.dim() != 2:
        raise input_error(loss_name, f"logits (N, C) and {targets_expected}", f"{shape(logits)} and {shape(target)}")
    num_samples, num_classes = logits.shape
    if target.dim() == 1 and target.shape[0] == num_samples:
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise input_error(loss_name, "class indices of an integer dtype", f"dtype {target.dtype}")
        if not scan:
            return False, target.long()
        # One pass and one host sync for the range check (a GPU would otherwise assert inside the kernel).
        lowest, highest = torch.aminmax(target) if num_samples else (target.new_zeros(()), target.new_zeros(()))
        if (lowest < 0) | (highest >= num_classes):
            found = [int(lowest), int(highest)]
            raise input_error(loss_name, f"class indices in [0, {num_classes - 1}]", f"range {found}")
        return False, target.long()
    if soft and target.shape == logits.shape:
        if not target.is_floating_point():
            raise input_error(loss_name, "floating-point probability targets (N, C)", f"dtype {target.dtype}")
        if scan and ((target < 0).any() | ((target.sum(dim=1) - 1).abs() > 1e-3).any()):
            raise input_error(loss_name, "probability rows: non-negative, summing to 1", "other values")
        return True, target
    raise input_error(loss_name, f"logits (N, C) and {targets_expected}", f"{shape(logits)} and {shape(target)}")


def _check_margin(loss_name: str, margin: float) -> float:
    if not margin >= 0:  # also rejects NaN
        raise ValueError(f"{loss_name}: expected `margin` >= 0, got {margin}")
    return float(margin)


def _check_gamma(gamma: float) -> float:
    if not gamma >= 0:
        raise ValueError(f"focal: expected `gamma` >= 0, got {gamma}")
    return float(gamma)


def _check_label_smoothing(label_smoothing: float) -> float:
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"cross_entropy: expected `label_smoothing` in [0, 1), got {label_smoothing}")
    return float(label_smoothing)


def _nonnegative_weights(loss_name: str, parameter: str, values: Sequence[float]) -> Tensor:
    """A list of per-class (or per-label) weights as a tensor, after checking it is usable."""
    try:
        if isinstance(values, str):
            raise TypeError
        numbers = [float(value) for value in values]
    except (TypeError, ValueError):
        raise ValueError(f"{loss_name}: expected `{parameter}` to be a list of numbers, got {values!r}") from None
    if not numbers or any(not value >= 0 for value in numbers):  # `not >=` also rejects NaN
        raise ValueError(f"{loss_name}: expected `{parameter}` to be non-empty and >= 0, got {numbers}")
    return torch.tensor(numbers, dtype=torch.get_default_dtype())


def _check_alpha(alpha: float | Sequence[float] | Tensor | None) -> Tensor | None:
    """``alpha`` as a 0-d tensor (binary α), a 1-d tensor (per-class weights) or None."""
    if alpha is None or isinstance(alpha, Tensor):
        return alpha
    if isinstance(alpha, int | float):
        if not 0 <= alpha <= 1:
            raise ValueError(f"focal: expected a float `alpha` in [0, 1], got {alpha}")
        return torch.tensor(float(alpha), dtype=torch.get_default_dtype())
    return _nonnegative_weights("focal", "alpha", alpha)


def _reduce_weighted(weighted_values: Tensor, weight_mass: Tensor, reduction: str) -> Tensor:
    """Reduce per-sample ``w_i ℓ_i``: ``"mean"`` is ``Σ w_i ℓ_i / Σ w_i``.

    A batch whose weights are all zero reduces to 0 rather than 0/0 = NaN, so one unlucky batch cannot
    poison training.
    """
    if reduction != "mean":
        return reduce(weighted_values, reduction)
    total = weight_mass.sum().clamp_min(torch.finfo(weight_mass.dtype).tiny)
    return weighted_values.sum() / total


def _true_class_mask(target: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(target, num_classes).bool()  # (N, C)


# -- hinge losses ----------------------------------------------------------------------------------


def hinge_loss(
    scores: Tensor, target: Tensor, *, margin: float = 1.0, reduction: Reduction = "mean", check_values: bool = True
) -> Tensor:
    r"""Binary hinge loss on raw scores, labels given as ±1 or 0/1 (0 is read as −1).

    .. math::
        \ell_i = \max(0,\; m - y_i f(x_i)), \qquad y_i \in \{-1, +1\}

    Args:
        scores: scores :math:`f(x)`, ``(N,)``.
        target: labels ``(N,)``, all in {−1, 1} or all in {0, 1}.
        margin: :math:`m \ge 0`.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
        >>> hinge_loss(torch.tensor([2.0, 0.5, 0.5]), torch.tensor([1, 1, 0]), reduction="none")
        tensor([0.0000, 0.5000, 1.5000])
    """
    margin = _check_margin("hinge", margin)
    check_reduction("hinge", reduction)
    _check_labels("hinge", scores, target, plus_minus_one=True, scan=check_values)
    signs = 2 * as_float(target > 0, scores) - 1
    return reduce((margin - signs * scores).clamp(min=0), reduction)


def multiclass_hinge_loss(
    logits: Tensor,
    target: Tensor,
    *,
    margin: float = 1.0,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Weston–Watkins multiclass hinge loss: one hinge per wrong class, summed.

    .. math::
        \ell_i = \sum_{j \ne y_i} \max(0,\; m - (s_{i y_i} - s_{ij}))

    ``torch.nn.MultiMarginLoss`` computes the same sum divided by the number of classes :math:`C`.

    Args:
        logits: class scores :math:`s`, ``(N, C)``.
        target: class indices ``(N,)``.
        margin: :math:`m \ge 0`.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
        >>> multiclass_hinge_loss(torch.tensor([[2.0, 1.5, -1.0]]), torch.tensor([0]))
        tensor(0.5000)
    """
    margin = _check_margin("multiclass_hinge", margin)
    check_reduction("multiclass_hinge", reduction)
    _, target = _check_multiclass("multiclass_hinge", logits, target, soft=False, scan=check_values)
    true_score = logits.gather(1, target[:, None])  # (N, 1)
    hinges = (margin - true_score + logits).clamp(min=0)  # (N, C)
    values = hinges.masked_fill(_true_class_mask(target, logits.shape[1]), 0.0).sum(dim=1)
    return reduce(values, reduction)


# -- cross-entropy ---------------------------------------------------------------------------------


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Softmax cross-entropy (natural log), from class indices or probability rows.

    .. math::
        \ell_i = -\sum_c q_{ic} \log \operatorname{softmax}(s_i)_c, \qquad
        q_i = (1 - \varepsilon)\, \operatorname{target}_i + \varepsilon / C

    where a class index :math:`y_i` stands for its one-hot row; with :math:`\varepsilon = 0` and index
    targets this is :math:`-\log \operatorname{softmax}(s_i)_{y_i}`. Matches ``torch.nn.CrossEntropyLoss``.

    Args:
        logits: ``(N, C)``.
        target: class indices ``(N,)`` or probabilities / one-hot rows ``(N, C)``.
        label_smoothing: :math:`\varepsilon \in [0, 1)`.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> round(cross_entropy(logits, torch.tensor([0, 2])).item(), 4)
        0.8955
    """
    label_smoothing = _check_label_smoothing(label_smoothing)
    check_reduction("cross_entropy", reduction)
    soft, target = _check_multiclass("cross_entropy", logits, target, soft=True, scan=check_values)
    return _fused_cross_entropy(logits, as_float(target, logits) if soft else target, label_smoothing, reduction)


def _fused_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float, reduction: str) -> Tensor:
    """``cross_entropy`` on checked input: torch's fused log_softmax + NLL (one pass forward and back),
    with the mean of an empty batch 0 (still attached to the graph) where torch's is NaN."""
    if logits.shape[0] == 0:
        return reduce(logits.sum(dim=1), reduction)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction=reduction)


def weighted_cross_entropy(
    logits: Tensor, target: Tensor, weights: Tensor, *, reduction: Reduction = "mean", check_values: bool = True
) -> Tensor:
    r"""Class-weighted cross-entropy; ``"mean"`` is the weighted mean, for every kind of target.

    .. math::
        \ell_i = -\sum_c \alpha_c\, q_{ic} \log \operatorname{softmax}(s_i)_c, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i \sum_c \alpha_c q_{ic}}

    For a class index (or its one-hot row) this is :math:`-\alpha_{y_i} \log p_{i y_i}` normalised by
    :math:`\sum_i \alpha_{y_i}`, as ``torch.nn.CrossEntropyLoss(weight=...)`` does for indices. For
    probability targets torch divides by :math:`N` instead, so one-hot rows and the indices they encode
    give different losses there; here the weight mass :math:`\sum_c \alpha_c q_{ic}` keeps them equal.

    Args:
        logits: ``(N, C)``.
        target: class indices ``(N,)`` or probabilities / one-hot rows ``(N, C)``.
        weights: per-class weights :math:`\alpha`, ``(C,)``, non-negative (not checked here).
        reduction: ``"mean"`` (weighted, as above), ``"sum"``, or ``"none"`` for the per-sample
            weighted values :math:`\ell_i`, ``(N,)``.
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
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


def class_counts(targets: Tensor, num_classes: int) -> Tensor:
    """How many training samples each class has, ``(C,)`` float64; probability rows count fractionally.

    Example:
        >>> class_counts(torch.tensor([0, 2, 2]), 3)
        tensor([1., 0., 2.], dtype=torch.float64)
    """
    if targets.dim() == 2 and targets.shape[1] == num_classes:
        return targets.detach().to(torch.float64).sum(dim=0)
    if targets.dim() != 1 or targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(
            f"expected training targets as class indices (N,) of an integer dtype or rows "
            f"(N, {num_classes}), got {shape(targets)} of dtype {targets.dtype}"
        )
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"expected training class indices in [0, {num_classes - 1}], "
            f"got range [{int(targets.min())}, {int(targets.max())}]"
        )
    return torch.bincount(targets.detach().long(), minlength=num_classes).to(torch.float64)


def _require_every_class(counts: Tensor, scheme: str) -> None:
    missing = (counts <= 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"{scheme!r} class weights need every class in the training targets; class(es) {missing} "
            f"have no samples. Give `weights` as a list to weight them by hand."
        )


def inverse_frequency_weights(counts: Tensor) -> Tensor:
    r"""Inverse-frequency class weights :math:`w_c = N / (C\, n_c)` (a balanced data set gives all ones).

    Example:
        >>> inverse_frequency_weights(torch.tensor([6.0, 2.0]))
        tensor([0.6667, 2.0000])
    """
    _require_every_class(counts, "inverse_frequency")
    return counts.sum() / (counts.numel() * counts)


def effective_number_weights(counts: Tensor, beta: float = 0.999) -> Tensor:
    r"""Class-balanced weights from the effective number of samples (Cui et al., 2019).

    .. math::
        w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}}, \qquad \sum_c w_c = C

    :math:`\beta \to 1` approaches inverse frequency, :math:`\beta = 0` gives uniform weights.

    Example:
        >>> effective_number_weights(torch.tensor([6.0, 2.0]), beta=0.5)
        tensor([0.8649, 1.1351])
    """
    if not 0 <= beta < 1:
        raise ValueError(f"effective_number: expected `beta` in [0, 1), got {beta}")
    _require_every_class(counts, "effective_number")
    weights = (1 - beta) / (1 - beta**counts)
    return weights * (counts.numel() / weights.sum())


def _check_beta(loss_name: str, beta: float) -> float:
    if not 0 <= beta < 1:  # also rejects NaN
        raise ValueError(f"{loss_name}: expected `beta` in [0, 1), got {beta}")
    return float(beta)


def _check_scheme(loss_name: str, parameter: str, scheme: str, alternatives: str) -> str:
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(
            f"{loss_name}: expected `{parameter}` to be {alternatives} or one of {list(WEIGHT_SCHEMES)}, got {scheme!r}"
        )
    return scheme


def scheme_weights(loss_name: str, scheme: str, targets: Tensor, num_classes: int, *, beta: float) -> Tensor:
    r"""Per-class weights by a named scheme from the training targets: the one computation every
    class-weighted loss's ``prepare`` shares, ``(C,)`` in the default dtype on the targets' device.

    ``num_classes = 1`` is the binary task (what the training pipeline passes there): the labels' two
    classes, negatives first, weighted as two classes.

    Args:
        loss_name: named in errors.
        scheme: ``"inverse_frequency"`` or ``"effective_number"``.
        targets: class indices ``(N,)``, probability rows ``(N, C)``, or binary labels ``(N,)``.
        num_classes: :math:`C`, or 1 for binary labels.
        beta: :math:`\beta` of ``"effective_number"``.

    Example:
        >>> scheme_weights("focal", "inverse_frequency", torch.tensor([1, 1, 1, 0]), 1, beta=0.0)
        tensor([2.0000, 0.6667])
    """
    if num_classes == 1:
        targets, num_classes = (targets > 0).long(), 2
    try:
        counts = class_counts(targets, num_classes)
        if scheme == "inverse_frequency":
            weights = inverse_frequency_weights(counts)
        else:
            weights = effective_number_weights(counts, beta)
    except ValueError as error:
        raise ValueError(f"{loss_name}: {error}") from None
    return weights.to(device=targets.device, dtype=torch.get_default_dtype())


def _adopt_prepared(module: nn.Module, buffer: str, state_dict: dict, prefix: str) -> None:
    """Before a checkpoint loads: give a still-``None`` buffer that ``prepare`` fills the checkpoint's shape,
    so a fresh module adopts the weights of the run that saved it without seeing the training labels."""
    key = prefix + buffer
    if getattr(module, buffer) is None and key in state_dict:
        setattr(module, buffer, torch.empty_like(state_dict[key]))


# -- focal -----------------------------------------------------------------------------------------


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

    .. math::
        \ell_i = -\alpha_{t}\, (1 - p_{t})^\gamma \log p_{t}

    with :math:`p_t` the probability of the true class: ``sigmoid`` of the score for binary input
    (scores ``(N,)``), ``softmax`` of the logits for multiclass input (``(N, C)``). Nothing ever
    differentiates :math:`(1-p)^\gamma` with respect to :math:`p`, whose derivative is infinite at
    :math:`p = 1` for :math:`\gamma < 1`: binary input computes :math:`\log p_t` and
    :math:`\log(1 - p_t)` with ``logsigmoid`` and :math:`(1-p_t)^\gamma = \exp(\gamma \log(1 - p_t))`;
    multiclass input takes :math:`1 - p_t` as the sum of the other classes' probabilities (exact where
    :math:`p_t` rounds to 1) and its gradient in closed form in logit space, in about as many passes over
    the logits as cross-entropy. Values and gradients stay finite for any :math:`\gamma \ge 0` and logits
    of any size. :math:`\gamma = 0` is (weighted) cross-entropy exactly.

    ``alpha``: ``None`` (:math:`\alpha_t = 1`); a float in [0, 1] for binary input (:math:`\alpha` for
    positives, :math:`1 - \alpha` for negatives); or a list of non-negative per-class weights (``C`` of
    them for multiclass, 2 for binary). With ``alpha`` given, ``"mean"`` is the weighted mean
    :math:`\sum_i \alpha_{t,i} (1-p_{t,i})^\gamma (-\log p_{t,i}) / \sum_i \alpha_{t,i}`, so with
    :math:`\gamma = 0` it equals ``weighted_cross_entropy`` (torchvision's ``sigmoid_focal_loss`` divides
    by :math:`N` instead).

    Args:
        prediction: binary scores ``(N,)`` or multiclass logits ``(N, C)``.
        target: binary labels ``(N,)`` in {0, 1}, or class indices ``(N,)``.
        gamma: focusing parameter :math:`\gamma \ge 0`.
        alpha: class weighting, see above.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values
            :math:`\ell_i` (with :math:`\alpha_t` applied).
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
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
    r"""Per-sample multiclass focal values :math:`-(1 - p_t)^\gamma \log p_t` from logits ``(N, C)``, with
    the gradient in closed form.

    Autograd through ``log_softmax``, a masked ``logsumexp`` over the other classes and ``exp`` makes about
    ten passes over the ``(N, C)`` logits; this makes four (``log_softmax``, ``exp``, a sum, and one for
    the gradient) and keeps one ``(N, C)`` tensor, the softmax, as ``log_softmax``'s own backward does.

    With :math:`q = 1 - p_t = \sum_{j \ne t} p_j` (a sum of positive terms: exact where :math:`p_t`
    rounds to 1) and :math:`g = q^\gamma (\gamma\, p_t \log p_t / q - 1)`, the gradient is
    :math:`\partial \ell / \partial s_j = g\, (\delta_{jt} - p_j)`. :math:`\log p_t / q` tends to
    :math:`-1` as :math:`q \to 0` and is taken as ``log1p(-q) / q`` for :math:`q < 1/2`, so neither
    values nor gradients overflow for any :math:`\gamma > 0` or logit size.
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
    """Each sample's α_t, ``(N,)``, after checking ``alpha`` fits the kind of input."""
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


# -- LDAM ------------------------------------------------------------------------------------------


def ldam_margins(counts: Tensor, max_margin: float = 0.5) -> Tensor:
    r"""LDAM's per-class margins (Cao et al., 2019): :math:`\Delta_c \propto n_c^{-1/4}`, the rarest class's
    margin ``max_margin``.

    Example:
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

    .. math::
        \ell_i = -\log \frac{e^{s (z_{i y_i} - \Delta_{y_i})}}{e^{s (z_{i y_i} - \Delta_{y_i})}
            + \sum_{j \ne y_i} e^{s z_{ij}}}

    Args:
        logits: :math:`z`, ``(N, C)``.
        target: class indices ``(N,)``.
        margins: :math:`\Delta`, ``(C,)`` (see :func:`ldam_margins`).
        scale: :math:`s > 0`, applied after the margin.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` values.
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
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


# -- binary cross-entropy --------------------------------------------------------------------------


def bce_loss(
    logits: Tensor,
    target: Tensor,
    *,
    pos_weight: float | Sequence[float] | Tensor | None = None,
    reduction: Reduction = "mean",
    check_values: bool = True,
) -> Tensor:
    r"""Sigmoid + binary cross-entropy per label, summed over the labels of each sample.

    .. math::
        \ell_i = -\sum_k \big[ w_k\, y_{ik} \log \sigma(s_{ik}) + (1 - y_{ik}) \log \sigma(-s_{ik}) \big]

    computed with ``logsigmoid`` so large scores stay finite. ``"mean"`` averages the per-sample sums
    over samples; ``torch.nn.BCEWithLogitsLoss`` averages over all :math:`N K` elements, so its mean
    is ours divided by :math:`K`.

    Args:
        logits: scores ``(N,)`` (binary) or ``(N, K)`` (multilabel).
        target: labels in {0, 1}, the same shape.
        pos_weight: :math:`w`, a weight on the positive term: one number, or one per label ``(K,)``.
        reduction: ``"mean"``, ``"sum"``, or ``"none"`` for the per-sample ``(N,)`` sums.
        check_values: scan the target values (labels in range); ``False`` for data validated up front.

    Example:
        >>> logits = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
        >>> labels = torch.tensor([[1, 1], [0, 1]])
        >>> bce_loss(logits, labels, reduction="none")
        tensor([0.8201, 1.0064])
    """
    check_reduction("bce", reduction)
    _check_labels("bce", logits, target, dims=(1, 2), scan=check_values)
    labels = as_float(target, logits)
    if pos_weight is not None:
        if not isinstance(pos_weight, Tensor):
            pos_weight = _nonnegative_weights("bce", "pos_weight", _as_list(pos_weight))
        num_labels = logits.shape[1] if logits.dim() == 2 else 1
        if pos_weight.numel() not in (1, num_labels):
            raise input_error(
                "bce", f"logits with one label per `pos_weight` entry ({pos_weight.numel()})", shape(logits)
            )
        pos_weight = pos_weight.to(device=logits.device, dtype=logits.dtype).reshape(-1)
    # torch's fused kernel computes exactly the formula above, stably (log1p(exp(−|s|))), in one pass;
    # only the reduction differs (torch's mean is over N·K elements), so it is done here from its sum.
    if reduction == "none" or logits.shape[0] == 0:
        values = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction="none")
        return reduce(values.sum(dim=1) if values.dim() == 2 else values, reduction)
    total = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction="sum")
    return total if reduction == "sum" else total / logits.shape[0]


def _as_list(value: float | Sequence[float]) -> Sequence[float]:
    return [value] if isinstance(value, int | float) else value


# -- modules ---------------------------------------------------------------------------------------


class HingeLoss(Loss):
    r"""Binary hinge loss, registered as ``hinge``: :math:`\max(0, m - y f(x))`, :math:`y \in \{-1, 1\}`.

    Labels may be given as ±1 or 0/1 (0 is read as −1).

    Args:
        margin: :math:`m \ge 0`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - prediction: scores ``(N,)``; target: labels ``(N,)``.
        - output: a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> HingeLoss()(torch.tensor([0.2, -3.0]), torch.tensor([-1, -1]))
        tensor(0.6000)
    """

    name: ClassVar[str] = "hinge"
    tasks: ClassVar[tuple[Task, ...]] = (Task.BINARY,)
    # The margin sets the scores' scale against weight decay, so its order of magnitude is what matters.
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = _check_margin(self.name, margin)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return hinge_loss(
            prediction, target, margin=self.margin, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, {super().extra_repr()}"


class MulticlassHingeLoss(Loss):
    r"""Weston–Watkins multiclass hinge, registered as ``multiclass_hinge``.

    .. math::
        \ell_i = \sum_{j \ne y_i} \max(0,\; m - (s_{i y_i} - s_{ij}))

    A sum over the wrong classes; ``torch.nn.MultiMarginLoss`` divides the same sum by :math:`C`.

    Args:
        margin: :math:`m \ge 0`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - prediction: logits ``(N, C)``; target: class indices ``(N,)``.
        - output: a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> MulticlassHingeLoss()(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([0]))
        tensor(1.)
    """

    name: ClassVar[str] = "multiclass_hinge"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS,)
    # As for `hinge`: the margin sets the logits' scale against weight decay; log-uniform around 1.
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = _check_margin(self.name, margin)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return multiclass_hinge_loss(
            prediction, target, margin=self.margin, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, {super().extra_repr()}"


class CrossEntropyLoss(Loss):
    r"""Softmax cross-entropy, registered as ``cross_entropy``.

    .. math::
        \ell_i = -\log \operatorname{softmax}(s_i)_{y_i}

    or :math:`-\sum_c q_{ic} \log \operatorname{softmax}(s_i)_c` for probability rows :math:`q_i`; with
    label smoothing :math:`\varepsilon` the target becomes :math:`(1 - \varepsilon) q_i + \varepsilon / C`.

    Args:
        label_smoothing: :math:`\varepsilon \in [0, 1)`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - prediction: logits ``(N, C)``; target: class indices ``(N,)`` or probabilities ``(N, C)``.
        - output: a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
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
    r"""Class-weighted cross-entropy, registered as ``weighted_cross_entropy``.

    .. math::
        \ell_i = -\alpha_{y_i} \log \operatorname{softmax}(s_i)_{y_i}, \qquad
        \text{mean} = \sum_i \ell_i \Big/ \sum_i \alpha_{y_i}

    For probability rows :math:`q_i` the weight of sample :math:`i` is :math:`\sum_c \alpha_c q_{ic}`, so
    one-hot rows give exactly what their indices give (see :func:`weighted_cross_entropy`).

    The weights are a list, or computed from the training labels by :meth:`prepare`, which the training
    pipeline calls once before training: ``"inverse_frequency"`` (:math:`w_c = N / (C n_c)`) or
    ``"effective_number"`` (:math:`w_c \propto (1-\beta)/(1-\beta^{n_c})`, summing to :math:`C`). They
    are a buffer, so ``.to(device)`` moves them.

    ``weights="effective_number"`` is Cui et al.'s (2019) class-balanced softmax cross-entropy: each
    sample's term :math:`-w_{y_i} \log p_{i y_i}` (``"none"``, ``"sum"``) is their
    :math:`\mathrm{CB}_{\text{softmax}}` exactly, with their normalisation :math:`\sum_c w_c = C`;
    ``"mean"`` divides the sum by the batch's weight mass :math:`\sum_i w_{y_i}` (as torch does), which
    rescales a batch's loss but not the relative weight of its samples. ``beta = 0`` is plain
    cross-entropy; :math:`\beta \to 1` approaches inverse frequency. The class-balanced *focal* loss is
    ``focal`` with ``alpha="effective_number"``.

    Args:
        weights: a list of ``C`` non-negative per-class weights, or ``"inverse_frequency"`` /
            ``"effective_number"``.
        beta: :math:`\beta \in [0, 1)` for ``"effective_number"``.
        reduction: ``"mean"`` (the weighted mean above), ``"sum"`` or ``"none"``.

    Shape:
        - prediction: logits ``(N, C)``; target: class indices ``(N,)`` or probabilities ``(N, C)``.
        - output: a scalar, or the per-sample weighted values :math:`\ell_i`, ``(N,)``, for
          ``reduction="none"``.

    Example:
        >>> loss = WeightedCrossEntropyLoss()  # inverse frequency
        >>> loss.prepare(targets=torch.tensor([0, 0, 0, 1]), num_classes=2)
        >>> loss.class_weights
        tensor([0.6667, 2.0000])
        >>> round(loss(torch.zeros(2, 2), torch.tensor([0, 1])).item(), 4)  # log 2
        0.6931
    """

    name: ClassVar[str] = "weighted_cross_entropy"
    tasks: ClassVar[tuple[Task, ...]] = (Task.MULTICLASS,)
    #: "mean" is Σ w_i ℓ_i / Σ w_i, not the mean of the "none" values (read by lossforge.testing).
    mean_is_weighted: ClassVar[bool] = True
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
            targets: the training set's class indices ``(N,)`` or probability rows ``(N, C)``.
            num_classes: :math:`C`.
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


class FocalLoss(Loss):
    r"""Focal loss, registered as ``focal``: binary (sigmoid) or multiclass (softmax) by input shape.

    .. math::
        \ell_i = -\alpha_t (1 - p_t)^\gamma \log p_t

    Finite values and gradients for every :math:`\gamma \ge 0`, including :math:`p_t \to 0` and
    :math:`p_t \to 1`; :math:`\gamma = 0` is cross-entropy exactly. With ``alpha`` given, ``"mean"`` is
    the :math:`\alpha_t`-weighted mean, so :math:`\gamma = 0` with per-class ``alpha`` equals
    ``weighted_cross_entropy`` (see :func:`focal_loss`).

    **Class-balanced focal loss** (Cui et al., 2019) is ``alpha="effective_number"``: :meth:`prepare`
    (which the training pipeline calls once with the training labels) sets :math:`\alpha_c \propto
    (1-\beta)/(1-\beta^{n_c})`, summing to :math:`C`, with the same computation as
    ``weighted_cross_entropy`` (:func:`scheme_weights`); ``"inverse_frequency"`` works too. On binary
    input the two classes are the negatives and the positives (the sigmoid variant), so the weights are
    ``[α_negative, α_positive]``. From the command line:
    ``python -m lossforge loss=focal loss.alpha=effective_number loss.beta=0.999``.

    Args:
        gamma: :math:`\gamma \ge 0`.
        alpha: ``None``; a float in [0, 1] (binary: :math:`\alpha` for positives, :math:`1 - \alpha`
            for negatives); a list of non-negative per-class weights; or ``"effective_number"`` /
            ``"inverse_frequency"``, computed from the training labels by :meth:`prepare`.
        beta: :math:`\beta \in [0, 1)` for ``alpha="effective_number"`` (ignored otherwise).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - prediction: scores ``(N,)`` with labels ``(N,)`` in {0, 1}, or logits ``(N, C)`` with class
          indices ``(N,)``.
        - output: a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
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
        """For ``alpha="effective_number"`` or ``"inverse_frequency"``: compute the per-class ``alpha``
        from the training labels (nothing to do otherwise).

        Args:
            targets: the training set's class indices ``(N,)`` (or probability rows ``(N, C)``), or binary
                labels ``(N,)`` in {0, 1}.
            num_classes: :math:`C`, or 1 for binary labels (as the training pipeline passes it).
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


class LDAMLoss(Loss):
    r"""LDAM loss, registered as ``ldam``: cross-entropy with a larger margin for rarer classes.

    .. math::
        \ell_i = -\log \operatorname{softmax}\left(s (z_i - \Delta_{y_i} e_{y_i})\right)_{y_i}, \qquad
        \Delta_c \propto n_c^{-1/4}

    Cao et al. (2019) derive the :math:`n_c^{-1/4}` margins from a generalisation bound; :meth:`prepare`
    (which the training pipeline calls once with the training labels) computes them, the rarest class's
    margin ``max_margin``. The paper applies it to cosine logits (a normalised last layer, :math:`s = 30`);
    the lecture's MLP has unnormalised logits, which can grow to make any fixed margin small, hence
    :math:`s = 1` by default and ``max_margin`` in the search space. Their *deferred re-weighting* (DRW:
    class-balanced weights switched on late in training) needs the epoch, which the loss contract does
    not hand a loss; it is not offered here.

    Args:
        max_margin: the rarest class's margin :math:`\max_c \Delta_c > 0`, in logit units.
        scale: :math:`s > 0`, multiplies the logits after the margin.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - prediction: logits ``(N, C)``; target: class indices ``(N,)``.
        - output: a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
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
            targets: the training set's class indices ``(N,)``.
            num_classes: :math:`C`.
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


class BCELoss(Loss):
    r"""Sigmoid + binary cross-entropy, registered as ``bce``; summed over labels per sample.

    .. math::
        \ell_i = -\sum_k \big[ w_k\, y_{ik} \log \sigma(s_{ik}) + (1 - y_{ik}) \log \sigma(-s_{ik}) \big]

    ``"mean"`` is the mean over samples of these per-sample sums (``torch.nn.BCEWithLogitsLoss``
    divides by :math:`N K`, i.e. gives ours divided by :math:`K`).

    Args:
        pos_weight: weight :math:`w` of the positive term: one number, or a list with one per label.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - prediction: scores ``(N,)`` or ``(N, K)``; target: {0, 1} labels of the same shape.
        - output: a scalar, or the per-sample sums ``(N,)`` for ``reduction="none"``.

    Example:
        >>> round(BCELoss()(torch.zeros(1, 3), torch.tensor([[1, 0, 1]])).item(), 4)  # 3 log 2
        2.0794
    """

    name: ClassVar[str] = "bce"
    tasks: ClassVar[tuple[Task, ...]] = (Task.BINARY, Task.MULTILABEL)
    # One weight for every label's positives, a decade either side of the default None (= 1), so bce gets
    # the class-balance knob the focal and asymmetric losses have.
    search_space: ClassVar[dict[str, Prior]] = {"pos_weight": FloatRange(0.1, 10.0, log=True)}
    pos_weight: Tensor | None

    def __init__(self, *, pos_weight: float | list[float] | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        weight = None if pos_weight is None else _nonnegative_weights(self.name, "pos_weight", _as_list(pos_weight))
        self.register_buffer("pos_weight", weight)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return bce_loss(
            prediction, target, pos_weight=self.pos_weight, reduction=self.reduction, check_values=self.scan_targets
        )

    def extra_repr(self) -> str:
        pos_weight = None if self.pos_weight is None else self.pos_weight.tolist()
        return f"pos_weight={pos_weight}, {super().extra_repr()}"
