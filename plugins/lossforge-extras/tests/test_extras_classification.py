"""Poly-1 cross-entropy and the asymmetric loss: against torch built-ins and explicit per-element loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossforge_extras.classification import (
    AsymmetricLoss,
    Poly1CrossEntropyLoss,
    asymmetric_loss,
    poly1_cross_entropy,
)


def multiclass_batch(dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(6, 4, generator=generator, dtype=dtype), torch.randint(0, 4, (6,), generator=generator)


def multilabel_batch(dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scores = 3 * torch.randn(6, 5, generator=generator, dtype=dtype)
    return scores, (torch.rand(6, 5, generator=generator) < 0.4).to(dtype)


# -- Poly-1 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_poly1_with_epsilon_zero_is_cross_entropy(reduction: str) -> None:
    logits, target = multiclass_batch()
    expected = F.cross_entropy(logits, target, reduction=reduction)
    torch.testing.assert_close(poly1_cross_entropy(logits, target, epsilon=0.0, reduction=reduction), expected)


@pytest.mark.parametrize("epsilon", [-1.0, 0.5, 2.0])
def test_poly1_matches_a_loop_over_samples(epsilon: float) -> None:
    logits, target = multiclass_batch()
    expected = []
    for row, label in zip(logits.tolist(), target.tolist(), strict=True):
        p_t = math.exp(row[label]) / sum(math.exp(value) for value in row)
        expected.append(-math.log(p_t) + epsilon * (1 - p_t))
    actual = Poly1CrossEntropyLoss(epsilon=epsilon, reduction="none")(logits, target)
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float64))


def test_poly1_is_finite_for_extreme_logits_and_passes_gradcheck() -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    loss = poly1_cross_entropy(logits, torch.tensor([1, 1]), epsilon=2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    logits, target = multiclass_batch()
    assert torch.autograd.gradcheck(lambda x: poly1_cross_entropy(x, target, epsilon=1.5), logits.requires_grad_(True))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epsilon": -1.5}, r"expected `epsilon` >= -1.0, got -1.5"),
        ({"epsilon": float("nan")}, "expected `epsilon` >= -1.0"),
        ({"epsilon": "1"}, "expected `epsilon` to be a number"),
        ({"reduction": "avg"}, r"expected `reduction` in \['mean', 'sum', 'none'\], got 'avg'"),
    ],
)
def test_poly1_validates_its_parameters(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Poly1CrossEntropyLoss(**params)


@pytest.mark.parametrize(
    ("logits", "target", "message"),
    [
        (torch.zeros(4, 3), torch.zeros(3, dtype=torch.long), r"got \(4, 3\) torch.float32 and \(3,\) torch.int64"),
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), r"expected floating logits \(N, C\)"),
        (torch.zeros(4, 3), torch.zeros(4), "class indices of an integer dtype, got torch.float32"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), r"class indices in \[0, 2\], got range \[0, 3\]"),
    ],
)
def test_poly1_names_itself_and_the_shapes_on_bad_input(
    logits: torch.Tensor, target: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=f"poly1_cross_entropy: .*{message}"):
        Poly1CrossEntropyLoss()(logits, target)


# -- asymmetric ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_asymmetric_without_focusing_or_clip_is_bce_summed_over_labels(reduction: str) -> None:
    scores, labels = multilabel_batch()
    per_sample = F.binary_cross_entropy_with_logits(scores, labels, reduction="none").sum(dim=1)
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    actual = AsymmetricLoss(gamma_positive=0.0, gamma_negative=0.0, clip=0.0, reduction=reduction)(scores, labels)
    torch.testing.assert_close(actual, expected)


def reference_asymmetric(scores: torch.Tensor, labels: torch.Tensor, gamma_pos: float, gamma_neg: float, clip: float):
    """The paper's formula, one label at a time."""
    values = []
    for score_row, label_row in zip(scores.tolist(), labels.tolist(), strict=True):
        total = 0.0
        for score, label in zip(score_row, label_row, strict=True):
            p = 1 / (1 + math.exp(-score))
            if label == 1:
                total -= (1 - p) ** gamma_pos * math.log(p)
            else:
                shifted = max(p - clip, 0.0)
                total -= shifted**gamma_neg * math.log(1 - shifted)
        values.append(total)
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize(("gamma_pos", "gamma_neg", "clip"), [(0.0, 4.0, 0.05), (1.0, 2.0, 0.0), (0.5, 0.5, 0.3)])
def test_asymmetric_matches_a_loop_over_labels(gamma_pos: float, gamma_neg: float, clip: float) -> None:
    scores, labels = multilabel_batch()
    loss = AsymmetricLoss(gamma_positive=gamma_pos, gamma_negative=gamma_neg, clip=clip, reduction="none")
    torch.testing.assert_close(loss(scores, labels), reference_asymmetric(scores, labels, gamma_pos, gamma_neg, clip))


def test_asymmetric_clip_zeroes_easy_negatives_exactly() -> None:
    scores = torch.tensor([[-3.0, -2.9]], requires_grad=True)  # p ≈ 0.047, 0.052
    loss = asymmetric_loss(scores, torch.zeros(1, 2), gamma_negative=0.0, clip=0.05, reduction="none")
    loss.sum().backward()
    assert scores.grad[0, 0] == 0 and scores.grad[0, 1] > 0  # only the negative above the margin counts


def test_asymmetric_binary_scores_are_one_label() -> None:
    scores, labels = multilabel_batch()
    as_columns = asymmetric_loss(scores[:, :1], labels[:, :1], reduction="none")
    torch.testing.assert_close(asymmetric_loss(scores[:, 0], labels[:, 0], reduction="none"), as_columns)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("gamma_pos", "gamma_neg", "clip"), [(0.0, 4.0, 0.05), (0.5, 0.5, 0.0), (0.3, 0.7, 0.1)])
def test_asymmetric_is_finite_for_extreme_scores(
    dtype: torch.dtype, gamma_pos: float, gamma_neg: float, clip: float
) -> None:
    scores = torch.tensor([[1e4, -1e4, 30.0, -30.0, 0.0]], dtype=dtype).repeat(2, 1).requires_grad_(True)
    labels = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=dtype)
    loss = asymmetric_loss(scores, labels, gamma_positive=gamma_pos, gamma_negative=gamma_neg, clip=clip)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


def test_asymmetric_passes_gradcheck() -> None:
    scores, labels = multilabel_batch()
    assert torch.autograd.gradcheck(
        lambda x: asymmetric_loss(x, labels, gamma_positive=1.0, gamma_negative=3.0, clip=0.1),
        scores.requires_grad_(True),
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gamma_negative": -1.0}, r"expected `gamma_negative` >= 0.0, got -1.0"),
        ({"gamma_positive": float("inf")}, "expected `gamma_positive` >= 0.0"),
        ({"clip": 1.0}, r"expected `clip` in \[0, 1\), got 1.0"),
        ({"clip": -0.1}, r"expected `clip` >= 0.0"),
        ({"reduction": "mean_nonzero"}, "expected `reduction` in"),
    ],
)
def test_asymmetric_validates_its_parameters(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"asymmetric: {message}"):
        AsymmetricLoss(**params)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (torch.zeros(4, 3), torch.zeros(4, 2), r"same shape, got \(4, 3\) torch.float32 and \(4, 2\) torch.float32"),
        (torch.zeros(4, 3, 2), torch.zeros(4, 3, 2), r"scores \(N,\) or \(N, K\)"),
        (torch.zeros(2, 2), torch.tensor([[0.0, 2.0], [1.0, 0.5]]), r"labels in \{0, 1\}, got values \[0.0, 0.5"),
    ],
)
def test_asymmetric_names_itself_and_the_shapes_on_bad_input(
    scores: torch.Tensor, labels: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=f"asymmetric: .*{message}"):
        AsymmetricLoss()(scores, labels)


def test_integer_and_bool_labels_are_accepted() -> None:
    scores, labels = multilabel_batch(torch.float32)
    expected = asymmetric_loss(scores, labels)
    torch.testing.assert_close(asymmetric_loss(scores, labels.long()), expected)
    torch.testing.assert_close(asymmetric_loss(scores, labels.bool()), expected)
