"""Classification losses against torch.nn built-ins and explicit per-sample loops, in float64."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from helpers import compose_config
from torch import Tensor, nn

from lossforge import build_loss
from lossforge.contract import loss_traits
from lossforge.losses.base import LossInputError
from lossforge.losses.classification import (
    BCELoss,
    CrossEntropyLoss,
    FocalLoss,
    HingeLoss,
    LDAMLoss,
    MulticlassHingeLoss,
    WeightedCrossEntropyLoss,
    bce_loss,
    class_counts,
    cross_entropy,
    effective_number_weights,
    focal_loss,
    hinge_loss,
    inverse_frequency_weights,
    multiclass_hinge_loss,
    weighted_cross_entropy,
)
from lossforge.testing import check_loss, make_inputs
from lossforge.training.build import build

REDUCTIONS = ("mean", "sum", "none")
F64 = torch.float64


def _reduce(values: Tensor, reduction: str) -> Tensor:
    return {"none": values, "sum": values.sum(), "mean": values.mean()}[reduction]


def _multiclass(num_samples: int = 10, num_classes: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_samples, num_classes, generator=generator, dtype=F64) * 2
    return logits, torch.randint(0, num_classes, (num_samples,), generator=generator)


def _binary(num_samples: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(num_samples, generator=generator, dtype=F64) * 2
    return scores, torch.randint(0, 2, (num_samples,), generator=generator)


def _probabilities(num_samples: int = 10, num_classes: int = 4, seed: int = 1) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num_samples, num_classes, generator=generator, dtype=F64).softmax(dim=1)


# -- the reference numbers -------------------------------------------------------------------------


def test_known_reference_values() -> None:
    torch.manual_seed(0)
    logits = torch.randn(8, 5)  # drawn first, then the targets
    targets = torch.randint(0, 5, (8,))
    assert build_loss("cross_entropy")(logits, targets).item() == pytest.approx(1.891258, abs=1e-6)
    weighted = build_loss("weighted_cross_entropy", weights=[1, 2, 3, 4, 5])
    assert weighted(logits, targets).item() == pytest.approx(1.863284, abs=1e-6)


# -- cross-entropy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_matches_torch(reduction: str, label_smoothing: float, soft: bool) -> None:
    logits, indices = _multiclass()
    target = _probabilities() if soft else indices
    expected = F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction=reduction)
    actual = build_loss("cross_entropy", label_smoothing=label_smoothing, reduction=reduction)(logits, target)
    torch.testing.assert_close(actual, expected)


def test_cross_entropy_one_hot_equals_indices() -> None:
    logits, indices = _multiclass()
    one_hot = F.one_hot(indices, 4).to(F64)
    torch.testing.assert_close(
        cross_entropy(logits, one_hot, label_smoothing=0.1),
        cross_entropy(logits, indices, label_smoothing=0.1),
    )


# -- weighted cross-entropy ------------------------------------------------------------------------

WEIGHTS = [0.5, 2.0, 1.0, 3.0]


def _weighted_loop(logits: Tensor, rows: Tensor, weights: list[float], reduction: str) -> Tensor:
    """Σ_i Σ_c α_c q_ic (−log p_ic), normalised by Σ_i Σ_c α_c q_ic, one sample at a time."""
    values, masses = [], []
    for sample_logits, row in zip(logits.tolist(), rows.tolist(), strict=True):
        log_normaliser = math.log(sum(math.exp(s) for s in sample_logits))
        values.append(sum(w * q * (log_normaliser - s) for w, q, s in zip(weights, row, sample_logits, strict=True)))
        masses.append(sum(w * q for w, q in zip(weights, row, strict=True)))
    result = torch.tensor(values, dtype=F64)
    return {"none": result, "sum": result.sum(), "mean": result.sum() / sum(masses)}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_cross_entropy_indices_match_torch(reduction: str) -> None:
    logits, indices = _multiclass()
    weights = torch.tensor(WEIGHTS, dtype=F64)
    expected = F.cross_entropy(logits, indices, weight=weights, reduction=reduction)
    actual = build_loss("weighted_cross_entropy", weights=WEIGHTS, reduction=reduction)(logits, indices)
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_cross_entropy_one_hot_equals_indices_and_loop(reduction: str) -> None:
    logits, indices = _multiclass()
    one_hot = F.one_hot(indices, 4).to(F64)
    loss = WeightedCrossEntropyLoss(weights=WEIGHTS, reduction=reduction)
    torch.testing.assert_close(loss(logits, one_hot), loss(logits, indices))
    torch.testing.assert_close(loss(logits, one_hot), _weighted_loop(logits, one_hot, WEIGHTS, reduction))
    if reduction == "mean":  # torch divides by N for probability targets: the trap this loss avoids
        torch_soft = F.cross_entropy(logits, one_hot, weight=torch.tensor(WEIGHTS, dtype=F64))
        assert not torch.allclose(torch_soft, loss(logits, one_hot))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_cross_entropy_soft_targets_loop(reduction: str) -> None:
    logits, _ = _multiclass()
    rows = _probabilities()
    actual = weighted_cross_entropy(logits, rows, torch.tensor(WEIGHTS), reduction=reduction)
    torch.testing.assert_close(actual, _weighted_loop(logits, rows, WEIGHTS, reduction))


def test_inverse_frequency_prepare() -> None:
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0])  # counts 5, 2, 1
    loss = WeightedCrossEntropyLoss()
    loss.prepare(targets=targets, num_classes=3)
    expected = [8 / (3 * 5), 8 / (3 * 2), 8 / (3 * 1)]
    torch.testing.assert_close(loss.class_weights, torch.tensor(expected))
    assert "class_weights" in loss.state_dict()
    assert loss.to(F64).class_weights.dtype == F64  # a buffer: .to() moves it with the module


def test_balanced_data_gives_unit_weights_and_plain_cross_entropy() -> None:
    logits, _ = _multiclass(8)
    targets = torch.arange(8) % 4
    loss = WeightedCrossEntropyLoss()
    loss.prepare(targets=targets, num_classes=4)
    torch.testing.assert_close(loss.class_weights, torch.ones(4))
    torch.testing.assert_close(loss(logits, targets), cross_entropy(logits, targets))


@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999])
def test_effective_number_loop(beta: float) -> None:
    counts = [5, 2, 1, 12]
    targets = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    loss = WeightedCrossEntropyLoss(weights="effective_number", beta=beta)
    loss.prepare(targets=targets, num_classes=4)
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    expected = [len(counts) * w / sum(raw) for w in raw]
    torch.testing.assert_close(loss.class_weights, torch.tensor(expected))
    assert loss.class_weights.sum().item() == pytest.approx(4)


def test_weight_helpers_with_one_hot_counts() -> None:
    counts = class_counts(F.one_hot(torch.tensor([0, 1, 1]), 2), 2)
    torch.testing.assert_close(counts, torch.tensor([1.0, 2.0], dtype=F64))
    torch.testing.assert_close(inverse_frequency_weights(counts), torch.tensor([1.5, 0.75], dtype=F64))
    torch.testing.assert_close(effective_number_weights(counts, 0.0), torch.ones(2, dtype=F64))


def test_prepared_weights_survive_a_checkpoint() -> None:
    trained = WeightedCrossEntropyLoss(weights="effective_number")
    trained.prepare(targets=torch.tensor([0, 0, 1, 2, 2, 2]), num_classes=3)
    fresh = WeightedCrossEntropyLoss(weights="effective_number")
    fresh.load_state_dict(trained.state_dict())
    torch.testing.assert_close(fresh.class_weights, trained.class_weights)


@pytest.mark.parametrize("scheme", ["inverse_frequency", "effective_number"])
def test_class_absent_from_training_is_named(scheme: str) -> None:
    loss = WeightedCrossEntropyLoss(weights=scheme)
    with pytest.raises(ValueError, match=r"weighted_cross_entropy: .*class\(es\) \[1, 3\]"):
        loss.prepare(targets=torch.tensor([0, 2, 2, 0]), num_classes=4)


def test_forward_before_prepare_is_a_clear_error() -> None:
    logits, targets = _multiclass()
    with pytest.raises(RuntimeError, match=r"weighted_cross_entropy: .*call `loss.prepare"):
        WeightedCrossEntropyLoss()(logits, targets)


def test_prepare_checks_a_given_list() -> None:
    loss = WeightedCrossEntropyLoss(weights=[1.0, 2.0])
    loss.prepare(targets=torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match="weighted_cross_entropy: got 2 `weights` but the data has 3 classes"):
        loss.prepare(targets=torch.tensor([0, 1, 2]), num_classes=3)
    with pytest.raises(LossInputError, match=r"weighted_cross_entropy: .*one class per weight \(2\).*\(10, 4\)"):
        loss(*_multiclass())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"weights": [1.0, -0.5]}, r"`weights` to be non-empty and >= 0"),
        ({"weights": []}, r"`weights` to be non-empty"),
        ({"weights": "balanced"}, r"one of \['inverse_frequency', 'effective_number'\], got 'balanced'"),
        ({"weights": 2.0}, r"`weights` to be a list of numbers"),
        ({"beta": 1.0}, r"`beta` in \[0, 1\)"),
    ],
)
def test_weighted_cross_entropy_invalid_params(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match="weighted_cross_entropy: expected .*" + message):
        WeightedCrossEntropyLoss(**params)


def test_all_zero_weight_batch_is_zero_not_nan() -> None:
    logits, _ = _multiclass()
    value = weighted_cross_entropy(logits, torch.zeros(10, dtype=torch.long), torch.tensor([0.0, 1, 1, 1]))
    assert value.item() == 0


# -- hinge losses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 1.0, 2.5])
def test_hinge_matches_margin_ranking_loss(reduction: str, margin: float) -> None:
    scores, labels = _binary()
    signs = (2 * labels - 1).to(F64)
    expected = F.margin_ranking_loss(scores, torch.zeros_like(scores), signs, margin=margin, reduction=reduction)
    loss = build_loss("hinge", margin=margin, reduction=reduction)
    torch.testing.assert_close(loss(scores, labels), expected)  # 0/1 labels
    torch.testing.assert_close(loss(scores, signs), expected)  # ±1 labels


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_multiclass_hinge_matches_multi_margin_loss_times_classes(reduction: str, margin: float) -> None:
    logits, targets = _multiclass()
    per_sample = nn.MultiMarginLoss(margin=margin, reduction="none")(logits, targets) * logits.shape[1]
    actual = build_loss("multiclass_hinge", margin=margin, reduction=reduction)(logits, targets)
    torch.testing.assert_close(actual, _reduce(per_sample, reduction))


@pytest.mark.parametrize("name", ["cross_entropy", "multiclass_hinge", "focal"])
@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8])
def test_any_integer_dtype_for_class_indices(name: str, dtype: torch.dtype) -> None:
    logits, targets = _multiclass()
    loss = build_loss(name)
    torch.testing.assert_close(loss(logits, targets.to(dtype)), loss(logits, targets))


@pytest.mark.parametrize("name", ["hinge", "focal", "bce"])
def test_bool_and_float_binary_labels(name: str) -> None:
    scores, labels = _binary()
    loss = build_loss(name)
    torch.testing.assert_close(loss(scores, labels.bool()), loss(scores, labels))
    torch.testing.assert_close(loss(scores, labels.to(F64)), loss(scores, labels))


def test_hinge_rejects_mixed_encodings() -> None:
    with pytest.raises(LossInputError, match=r"hinge: expected labels either all in \{0, 1\} or all in"):
        hinge_loss(torch.zeros(3), torch.tensor([-1, 0, 1]))


# -- focal -----------------------------------------------------------------------------------------


def _focal_loop(prediction: Tensor, target: Tensor, gamma: float, alpha, reduction: str) -> Tensor:
    """−α_t (1 − p_t)^γ log p_t one sample at a time with math.*; "mean" normalised by Σ α_t."""
    values, alphas = [], []
    for scores, label in zip(prediction.tolist(), target.tolist(), strict=True):
        if prediction.dim() == 1:  # binary: p = sigmoid(score)
            p_positive = 1 / (1 + math.exp(-scores))
            p_true = p_positive if label == 1 else 1 - p_positive
            if alpha is None:
                alpha_t = 1.0
            elif isinstance(alpha, float):
                alpha_t = alpha if label == 1 else 1 - alpha
            else:
                alpha_t = alpha[int(label)]
        else:
            p_true = math.exp(scores[label]) / sum(math.exp(s) for s in scores)
            alpha_t = 1.0 if alpha is None else alpha[label]
        values.append(-alpha_t * (1 - p_true) ** gamma * math.log(p_true))
        alphas.append(alpha_t)
    result = torch.tensor(values, dtype=F64)
    return {"none": result, "sum": result.sum(), "mean": result.sum() / sum(alphas)}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, [0.5, 2.0, 1.0, 0.25]])
def test_focal_multiclass_loop(reduction: str, gamma: float, alpha) -> None:
    logits, targets = _multiclass()
    actual = build_loss("focal", gamma=gamma, alpha=alpha, reduction=reduction)(logits, targets)
    torch.testing.assert_close(actual, _focal_loop(logits, targets, gamma, alpha, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25, 1.0, [0.3, 1.5]])
def test_focal_binary_loop(reduction: str, gamma: float, alpha) -> None:
    scores, labels = _binary()
    actual = FocalLoss(gamma=gamma, alpha=alpha, reduction=reduction)(scores, labels)
    torch.testing.assert_close(actual, _focal_loop(scores, labels, gamma, alpha, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_gamma_zero_is_cross_entropy(reduction: str) -> None:
    logits, targets = _multiclass()
    focal = focal_loss(logits, targets, gamma=0.0, reduction=reduction)
    torch.testing.assert_close(focal, cross_entropy(logits, targets, reduction=reduction), rtol=0, atol=0)
    weighted = focal_loss(logits, targets, gamma=0.0, alpha=WEIGHTS, reduction=reduction)
    expected = weighted_cross_entropy(logits, targets, torch.tensor(WEIGHTS), reduction=reduction)
    torch.testing.assert_close(weighted, expected)
    scores, labels = _binary()
    torch.testing.assert_close(
        focal_loss(scores, labels, gamma=0.0, reduction=reduction),
        bce_loss(scores, labels, reduction=reduction),
    )


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("extreme", [30.0, 1000.0])
def test_focal_finite_at_confident_and_hopeless_predictions(gamma: float, dtype: torch.dtype, extreme: float) -> None:
    # Row 0: p_t → 1; row 1: p_t → 0; the same for the binary scores.
    logits = torch.tensor([[extreme, -extreme, 0.0], [-extreme, extreme, 0.0]], dtype=dtype, requires_grad=True)
    scores = torch.tensor([extreme, -extreme], dtype=dtype, requires_grad=True)
    for prediction, target in ((logits, torch.tensor([0, 0])), (scores, torch.tensor([1, 1]))):
        values = focal_loss(prediction, target, gamma=gamma, reduction="none")
        assert torch.isfinite(values).all()
        assert values[0] < 1e-6 and values[1] > extreme / 2  # confident: ~0; hopeless: ~extreme
        values.sum().backward()
        assert prediction.grad is not None and torch.isfinite(prediction.grad).all()


def test_focal_gradient_in_the_p_near_one_regime_matches_finite_differences() -> None:
    # γ = 0.5 near p_t = 1, where d/dp (1 − p)^γ is infinite: the logit-space gradient must stay exact.
    logits = torch.tensor([[12.0, -3.0, 0.5]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, torch.tensor([0]), gamma=0.5), (logits,))
    scores = torch.tensor([15.0, -14.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, torch.tensor([1, 0]), gamma=0.5), (scores,))


def test_focal_alpha_must_fit_the_input() -> None:
    logits, targets = _multiclass()
    with pytest.raises(LossInputError, match=r"focal: expected binary scores \(N,\) for a float `alpha`"):
        FocalLoss(alpha=0.25)(logits, targets)
    with pytest.raises(LossInputError, match=r"focal: expected one `alpha` weight per class \(4 for logits"):
        FocalLoss(alpha=[1.0, 2.0])(logits, targets)
    with pytest.raises(LossInputError, match=r"focal: expected logits \(N, C\) with C >= 2"):
        focal_loss(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gamma": -0.1}, "focal: expected `gamma` >= 0, got -0.1"),
        ({"alpha": 1.5}, r"focal: expected a float `alpha` in \[0, 1\], got 1.5"),
        ({"alpha": -0.1}, r"focal: expected a float `alpha` in \[0, 1\]"),
        ({"alpha": [1.0, -2.0]}, "focal: expected `alpha` to be non-empty and >= 0"),
    ],
)
def test_focal_invalid_params(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FocalLoss(**params)


# -- class-balanced losses (Cui et al., 2019) ------------------------------------------------------


def _cui_weights(counts: list[int], beta: float) -> list[float]:
    """Cui et al.'s class-balanced weights, from the paper: (1 - β) / (1 - β^n_c), normalised to sum to C."""
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    return [len(counts) * w / sum(raw) for w in raw]


def _labels(counts: list[int]) -> Tensor:
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999, 0.9999])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_class_balanced_focal_multiclass_is_cui_et_al(beta: float, reduction: str, gamma: float) -> None:
    counts = [40, 12, 3, 1]
    loss = FocalLoss(gamma=gamma, alpha="effective_number", beta=beta, reduction=reduction)
    loss.prepare(targets=_labels(counts), num_classes=4)
    expected_weights = _cui_weights(counts, beta)
    torch.testing.assert_close(loss.alpha, torch.tensor(expected_weights))
    logits, targets = _multiclass()
    actual = loss.to(F64)(logits, targets)
    torch.testing.assert_close(actual, _focal_loop(logits, targets, gamma, expected_weights, reduction))


@pytest.mark.parametrize("beta", [0.9, 0.999])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_balanced_focal_binary_weights_negatives_and_positives(beta: float, reduction: str) -> None:
    labels = torch.tensor([0] * 30 + [1] * 4)  # 30 negatives, 4 positives
    loss = FocalLoss(alpha="effective_number", beta=beta, reduction=reduction)
    loss.prepare(targets=labels, num_classes=1)  # what the pipeline passes for a binary task
    expected_weights = _cui_weights([30, 4], beta)  # [negatives, positives]
    torch.testing.assert_close(loss.alpha, torch.tensor(expected_weights))
    loss.prepare(targets=labels.float(), num_classes=1)  # float {0, 1} labels count the same
    torch.testing.assert_close(loss.alpha, torch.tensor(expected_weights))
    scores, targets = _binary()
    torch.testing.assert_close(
        loss.to(F64)(scores, targets), _focal_loop(scores, targets, 2.0, expected_weights, reduction)
    )


@pytest.mark.parametrize("scheme", ["effective_number", "inverse_frequency"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_balanced_classes_change_nothing(scheme: str, reduction: str) -> None:
    logits, _ = _multiclass(8)
    targets = torch.arange(8) % 4  # two of each class
    focal = FocalLoss(alpha=scheme, beta=0.99, reduction=reduction)
    focal.prepare(targets=targets, num_classes=4)
    torch.testing.assert_close(focal.alpha, torch.ones(4))
    torch.testing.assert_close(focal.to(F64)(logits, targets), focal_loss(logits, targets, reduction=reduction))
    weighted = WeightedCrossEntropyLoss(weights=scheme, beta=0.99, reduction=reduction)
    weighted.prepare(targets=targets, num_classes=4)
    torch.testing.assert_close(weighted.to(F64)(logits, targets), cross_entropy(logits, targets, reduction=reduction))


def test_class_balanced_focal_at_gamma_zero_is_class_balanced_cross_entropy() -> None:
    counts = [25, 5, 2, 9]
    focal = FocalLoss(gamma=0.0, alpha="effective_number", beta=0.99)
    weighted = WeightedCrossEntropyLoss(weights="effective_number", beta=0.99)
    for loss in (focal, weighted):
        loss.prepare(targets=_labels(counts), num_classes=4)
    torch.testing.assert_close(focal.alpha, weighted.class_weights, rtol=0, atol=0)  # one computation
    logits, targets = _multiclass()
    torch.testing.assert_close(focal.to(F64)(logits, targets), weighted.to(F64)(logits, targets))


def test_class_balanced_focal_needs_prepare_and_every_class() -> None:
    logits, targets = _multiclass()
    with pytest.raises(RuntimeError, match=r"focal: alpha='effective_number' is computed .*call `loss.prepare"):
        FocalLoss(alpha="effective_number")(logits, targets)
    with pytest.raises(ValueError, match=r"focal: 'effective_number' class weights need every class.*\[2\]"):
        FocalLoss(alpha="effective_number").prepare(targets=torch.tensor([0, 1, 3]), num_classes=4)
    with pytest.raises(ValueError, match=r"focal: 'inverse_frequency' class weights need every class.*\[1\]"):
        FocalLoss(alpha="inverse_frequency").prepare(targets=torch.zeros(5, dtype=torch.long), num_classes=1)


def test_class_balanced_focal_survives_a_checkpoint() -> None:
    trained = FocalLoss(alpha="effective_number", beta=0.9)
    trained.prepare(targets=torch.tensor([0, 0, 0, 1, 2, 2]), num_classes=3)
    fresh = FocalLoss(alpha="effective_number", beta=0.9)
    fresh.load_state_dict(trained.state_dict())
    torch.testing.assert_close(fresh.alpha, trained.alpha)
    assert "alpha='effective_number', beta=0.9" in repr(FocalLoss(alpha="effective_number", beta=0.9))
    assert FocalLoss(alpha="effective_number").mean_is_weighted and not FocalLoss().mean_is_weighted


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"alpha": "balanced"},
            r"focal: expected `alpha` to be None, a float in \[0, 1\], a list of per-class "
            r"weights or one of \['inverse_frequency', 'effective_number'\], got 'balanced'",
        ),
        ({"alpha": "effective_number", "beta": 1.0}, r"focal: expected `beta` in \[0, 1\), got 1.0"),
        ({"beta": -0.1}, r"focal: expected `beta` in \[0, 1\)"),
    ],
)
def test_class_balanced_focal_invalid_params(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FocalLoss(**params)


@pytest.mark.parametrize(("scheme", "task"), [("effective_number", "multiclass"), ("inverse_frequency", "binary")])
def test_class_balanced_focal_meets_the_contract(scheme: str, task: str) -> None:
    check_loss("focal", params={"alpha": scheme, "beta": 0.9, "gamma": 1.0}, tasks=(task,))


def test_class_balanced_focal_from_the_command_line() -> None:
    cfg = compose_config("loss=focal", "loss.alpha=effective_number", "loss.beta=0.99", "dataset=digits_imbalanced")
    built = build(cfg)
    loss = built.module.loss
    assert isinstance(loss, FocalLoss) and loss.scheme == "effective_number" and loss.beta == 0.99
    counts = torch.bincount(built.data.train.targets, minlength=10).tolist()
    torch.testing.assert_close(loss.alpha, torch.tensor(_cui_weights(counts, 0.99)))
    assert loss.alpha[9] > loss.alpha[0]  # the rarest digit weighs most


# -- LDAM (Cao et al., 2019) ------------------------------------------------------------------------


def _ldam_loop(logits: Tensor, targets: Tensor, counts: list[int], max_margin: float, scale: float) -> Tensor:
    """The paper's formula per sample: margins C / n_j^(1/4) with the largest max_margin, subtracted from the
    true class's logit, then a scaled softmax cross-entropy."""
    raw = [n**-0.25 for n in counts]
    margins = [max_margin * m / max(raw) for m in raw]
    values = []
    for row, label in zip(logits.tolist(), targets.tolist(), strict=True):
        shifted = [scale * (z - (margins[j] if j == label else 0.0)) for j, z in enumerate(row)]
        values.append(-(shifted[label] - math.log(sum(math.exp(z) for z in shifted))))
    return torch.tensor(values, dtype=F64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("max_margin", "scale"), [(0.5, 1.0), (1.5, 3.0)])
def test_ldam_matches_the_paper_formula(reduction: str, max_margin: float, scale: float) -> None:
    counts = [40, 12, 3, 1]
    loss = build_loss("ldam", max_margin=max_margin, scale=scale, reduction=reduction)
    loss.prepare(targets=_labels(counts), num_classes=4)
    logits, targets = _multiclass()
    expected = _ldam_loop(logits, targets, counts, max_margin, scale)
    torch.testing.assert_close(loss.to(F64)(logits, targets), _reduce(expected, reduction))
    assert loss.margins.argmax().item() == 3 and loss.margins.max().item() == pytest.approx(max_margin)


def test_ldam_with_tiny_margins_is_cross_entropy_and_rare_classes_cost_more() -> None:
    logits, targets = _multiclass()
    counts = [40, 12, 3, 1]
    tiny = LDAMLoss(max_margin=1e-9)
    tiny.prepare(targets=_labels(counts), num_classes=4)
    torch.testing.assert_close(tiny.to(F64)(logits, targets), cross_entropy(logits, targets))
    loss = LDAMLoss().to(F64)
    loss.prepare(targets=_labels(counts), num_classes=4)
    even = torch.zeros(1, 4, dtype=F64)  # the same logits: the rarer the true class, the larger the loss
    per_class = [loss(even, torch.tensor([c])).item() for c in range(4)]
    assert per_class == sorted(per_class) and per_class[0] > math.log(4)


def test_ldam_gradcheck_and_errors() -> None:
    loss = LDAMLoss(max_margin=0.7, scale=2.0).to(F64)
    logits, targets = _multiclass(6)
    with pytest.raises(RuntimeError, match=r"ldam: the margins are computed from the training labels; call"):
        loss(logits, targets)
    loss.prepare(targets=_labels([5, 3, 2, 1]), num_classes=4)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, targets), (logits,))
    with pytest.raises(
        ValueError, match=r"ldam: LDAM margins \(n_c\^\(-1/4\)\) need every class.*\[1\] have no samples"
    ):
        LDAMLoss().prepare(targets=torch.tensor([0, 2, 2]), num_classes=3)
    with pytest.raises(ValueError, match=r"ldam: expected `max_margin` > 0 \(the rarest class's margin\), got 0.0"):
        LDAMLoss(max_margin=0.0)
    with pytest.raises(ValueError, match=r"ldam: expected `scale` > 0"):
        LDAMLoss(scale=float("nan"))
    with pytest.raises(LossInputError, match=r"ldam: expected logits with one class per margin \(4\), got \(2, 3\)"):
        loss(torch.zeros(2, 3, dtype=F64), torch.tensor([0, 1]))
    fresh = LDAMLoss(max_margin=0.7, scale=2.0)
    fresh.load_state_dict(loss.state_dict())  # the margins travel in a checkpoint
    torch.testing.assert_close(fresh.margins, loss.margins.float())


# -- bce -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0, [0.5, 1.0, 4.0]])
def test_bce_multilabel_matches_torch_times_labels(reduction: str, pos_weight) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=generator, dtype=F64) * 3
    labels = torch.randint(0, 2, (6, 3), generator=generator).to(F64)
    torch_weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=F64)
    elementwise = nn.BCEWithLogitsLoss(reduction="none", pos_weight=torch_weight)(logits, labels)
    actual = build_loss("bce", pos_weight=pos_weight, reduction=reduction)(logits, labels)
    torch.testing.assert_close(actual, _reduce(elementwise.sum(dim=1), reduction))
    if reduction == "mean":  # torch's mean is over N·K elements
        torch.testing.assert_close(
            actual, 3 * F.binary_cross_entropy_with_logits(logits, labels, pos_weight=torch_weight)
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_binary_matches_torch(reduction: str) -> None:
    scores, labels = _binary()
    expected = F.binary_cross_entropy_with_logits(scores, labels.to(F64), reduction=reduction)
    torch.testing.assert_close(BCELoss(reduction=reduction)(scores, labels), expected)
    torch.testing.assert_close(BCELoss(reduction=reduction)(scores, labels.bool()), expected)


def test_bce_is_finite_for_huge_logits() -> None:
    logits = torch.tensor([[1e4, -1e4]], requires_grad=True)
    value = bce_loss(logits, torch.tensor([[0, 1]]))
    value.backward()
    assert value.item() == pytest.approx(2e4) and torch.isfinite(logits.grad).all()


def test_bce_pos_weight_length_must_fit() -> None:
    with pytest.raises(LossInputError, match=r"bce: expected logits with one label per `pos_weight` entry \(2\)"):
        BCELoss(pos_weight=[1.0, 2.0])(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="bce: expected `pos_weight` to be non-empty and >= 0"):
        BCELoss(pos_weight=-1.0)


# -- all of them -----------------------------------------------------------------------------------

# name → (params, inputs maker) for gradcheck and the single-class batch
CASES = {
    "hinge": ({}, lambda: _binary()),
    "multiclass_hinge": ({}, lambda: _multiclass()),
    "cross_entropy": ({"label_smoothing": 0.1}, lambda: _multiclass()),
    "cross_entropy_soft": ({}, lambda: (_multiclass()[0], _probabilities())),
    "weighted_cross_entropy": ({"weights": WEIGHTS}, lambda: _multiclass()),
    "weighted_cross_entropy_soft": ({"weights": WEIGHTS}, lambda: (_multiclass()[0], _probabilities())),
    "focal": ({"gamma": 0.5, "alpha": WEIGHTS}, lambda: _multiclass()),
    "focal_binary": ({"gamma": 2.0, "alpha": 0.25}, lambda: _binary()),
    "bce": (
        {"pos_weight": [1.0, 2.0, 0.5, 3.0]},
        lambda: (_multiclass()[0], (_probabilities() > 0.25).long()),
    ),
}


def _build(case: str, reduction: str = "mean") -> nn.Module:
    params, _ = CASES[case]
    return build_loss(case.removesuffix("_soft").removesuffix("_binary"), reduction=reduction, **params)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(case: str, reduction: str) -> None:
    prediction, target = CASES[case][1]()
    loss = _build(case, reduction)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (prediction.requires_grad_(True),))


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_class_batch(case: str) -> None:
    prediction, target = CASES[case][1]()
    if target.dim() == 1:
        target = torch.ones_like(target)
    else:
        target = F.one_hot(torch.ones(len(target), dtype=torch.long), target.shape[1]).to(target.dtype)
    values = _build(case, "none")(prediction, target)
    assert values.shape == (len(target),) and torch.isfinite(values).all()
    # Every sample has class 1, so every sample weighs the same and the weighted mean is a plain mean.
    class_one_weight = {"focal": WEIGHTS[1], "focal_binary": 0.25}.get(case, 1.0)
    if case.startswith("weighted"):
        class_one_weight = WEIGHTS[1]
    torch.testing.assert_close(_build(case, "mean")(prediction, target), values.mean() / class_one_weight)


BAD_INPUTS = {
    # name: [(prediction, target, fragment of the message)]
    "hinge": [
        (torch.zeros(4, 2), torch.zeros(4, 2), "(4, 2)"),
        (torch.zeros(4), torch.zeros(3), "(4,) and (3,)"),
        (torch.zeros(4, dtype=torch.long), torch.zeros(4), "torch.int64"),
        (torch.zeros(4), torch.tensor([0, 1, 2, 1]), "values [0, 1, 2]"),
    ],
    "multiclass_hinge": [
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), "(4,)"),
        (torch.zeros(4, 3), torch.zeros(4, 3), "class indices (N,)"),
        (torch.zeros(4, 3), torch.zeros(4), "integer dtype, got dtype torch.float32"),
        (torch.zeros(4, 3), torch.tensor([0, 1, 3, 1]), "class indices in [0, 2], got range [0, 3]"),
        (torch.zeros(4, 3), torch.tensor([0, -1, 2, 1]), "got range [-1, 2]"),
    ],
    "cross_entropy": [
        (torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), "(4, 3) and (5,)"),
        (torch.zeros(4, 3), torch.zeros(4, 2), "probabilities (N, C), got (4, 3) and (4, 2)"),
        (torch.zeros(4, 3), torch.tensor([0, 1, 5, 1]), "[0, 2]"),
        (torch.zeros(4, 3), torch.full((4, 3), 0.5), "summing to 1"),
        (torch.zeros(4, 3, dtype=torch.int32), torch.zeros(4, dtype=torch.long), "torch.int32"),
    ],
    "focal": [
        (torch.zeros(4), torch.tensor([0, 1, 2, 1]), "labels in {0, 1}"),
        (torch.zeros(4, 3), torch.tensor([0, 1, 3, 1]), "[0, 2]"),
        (torch.zeros(4, 3), torch.zeros(4, 3), "class indices (N,)"),
        (torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long), "(2, 3, 4)"),
    ],
    "bce": [
        (torch.zeros(4, 3), torch.zeros(4), "(4, 3) and (4,)"),
        (torch.zeros(4, 3), torch.full((4, 3), 0.5), "labels in {0, 1}"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "(2, 3, 4)"),
    ],
}


@pytest.mark.parametrize(
    ("name", "prediction", "target", "fragment"),
    [(name, *case) for name, cases in BAD_INPUTS.items() for case in cases],
)
def test_bad_inputs_name_the_loss(name: str, prediction: Tensor, target: Tensor, fragment: str) -> None:
    with pytest.raises(LossInputError, match=rf"^{name}: expected .*{re.escape(fragment)}"):
        build_loss(name)(prediction, target)


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (HingeLoss, {"margin": -1.0}, "hinge: expected `margin` >= 0, got -1.0"),
        (MulticlassHingeLoss, {"margin": float("nan")}, "multiclass_hinge: expected `margin` >= 0"),
        (
            CrossEntropyLoss,
            {"label_smoothing": 1.0},
            r"cross_entropy: expected `label_smoothing` in \[0, 1\)",
        ),
        (CrossEntropyLoss, {"reduction": "avg"}, "cross_entropy: expected `reduction`"),
    ],
)
def test_invalid_params(cls: type, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**params)


def test_pure_functions_validate_too() -> None:
    logits, targets = _multiclass()
    with pytest.raises(ValueError, match="multiclass_hinge: expected `margin` >= 0"):
        multiclass_hinge_loss(logits, targets, margin=-1.0)
    with pytest.raises(ValueError, match="focal: expected `reduction`"):
        focal_loss(logits, targets, reduction="avg")


# -- check_values=False: value scans skipped for data validated up front ----------------------------------
VALUE_ERRORS = {
    "bce labels outside {0, 1}": (
        lambda **k: bce_loss(torch.zeros(2, 3), torch.full((2, 3), 0.5), **k),
        "labels in {0, 1}",
    ),
    "hinge labels outside ±1": (lambda **k: hinge_loss(torch.zeros(3), torch.tensor([2.0, 1.0, -1.0]), **k), "labels"),
    "class index out of range": (
        lambda **k: cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]), **k),
        "class indices",
    ),
    "probability rows not summing to 1": (
        lambda **k: cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 0.5), **k),
        "probability rows",
    ),
    "focal index out of range": (
        lambda **k: focal_loss(torch.zeros(2, 3), torch.tensor([-1, 0]), **k),
        "class indices",
    ),
}


@pytest.mark.parametrize("case", VALUE_ERRORS.values(), ids=VALUE_ERRORS.keys())
def test_target_values_are_scanned_unless_validated_up_front(case) -> None:
    call, message = case
    with pytest.raises(LossInputError, match=re.escape(message)):
        call()
    try:  # the caller vouches for the values: no scan, no host sync
        call(check_values=False)  # wrong values now give a meaningless loss, or torch's own error
    except LossInputError as error:
        pytest.fail(f"scanned target values with check_values=False: {error}")
    except (IndexError, RuntimeError):
        pass


def test_skipping_value_scans_keeps_shape_and_dtype_checks_and_values() -> None:
    logits, labels = torch.randn(4, 3, dtype=F64), torch.randint(0, 2, (4, 3)).double()
    assert torch.equal(bce_loss(logits, labels, check_values=False), bce_loss(logits, labels))
    with pytest.raises(LossInputError, match=re.escape("(4, 3) and (4,)")):
        bce_loss(logits, labels[:, 0], check_values=False)
    with pytest.raises(LossInputError, match="integer dtype"):
        cross_entropy(logits, labels[:, 0], check_values=False)


@pytest.mark.parametrize(
    "name", ["hinge", "multiclass_hinge", "cross_entropy", "weighted_cross_entropy", "focal", "bce"]
)
def test_modules_pass_scan_targets_to_their_function(name: str) -> None:
    loss = build_loss(name)
    assert loss.scan_targets is True  # on its own, a loss checks its targets
    tasks = loss_traits(loss).tasks
    prediction, target = make_inputs(tasks[0], dtype=F64)
    if name == "weighted_cross_entropy":
        loss.prepare(targets=target, num_classes=prediction.shape[1])
    bad = target.clone()
    bad[0] = 7  # outside every encoding and class range
    with pytest.raises(LossInputError):
        loss(prediction, bad)
    loss.scan_targets = False
    try:
        loss(prediction, bad)
    except LossInputError as error:
        pytest.fail(f"{name} scanned its targets with scan_targets=False: {error}")
    except (IndexError, RuntimeError):
        pass
