"""Multi-similarity and InfoNCE against explicit Python loops over anchors and pairs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossforge_extras.metric import InfoNCELoss, MultiSimilarityLoss, info_nce_loss, multi_similarity_loss
from lossforge_extras.miners import MultiSimilarityMiner

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3])  # class 3 has a single member: no positive pair


def embeddings(dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(len(LABELS), 3, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def cosine(first: list[float], second: list[float]) -> float:
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    return dot / math.sqrt(sum(a * a for a in first) * sum(b * b for b in second))


def all_pairs(labels: list[int]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    positives = {(i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j and labels[i] == labels[j]}
    negatives = {(i, j) for i in range(len(labels)) for j in range(len(labels)) if labels[i] != labels[j]}
    return positives, negatives


def pairs_of(indices: tuple[torch.Tensor, ...]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    if len(indices) == 3:
        anchors, positives, negatives = (index.tolist() for index in indices)
        return set(zip(anchors, positives, strict=True)), set(zip(anchors, negatives, strict=True))
    a1, p, a2, n = (index.tolist() for index in indices)
    return set(zip(a1, p, strict=True)), set(zip(a2, n, strict=True))


# -- multi-similarity ------------------------------------------------------------------------------


def reference_multi_similarity(x, labels, positives, negatives, alpha=2.0, beta=50.0, base=0.5):
    rows, values = x.tolist(), []
    for i in range(len(rows)):
        positive_sum = sum(math.exp(-alpha * (cosine(rows[i], rows[j]) - base)) for a, j in positives if a == i)
        negative_sum = sum(math.exp(beta * (cosine(rows[i], rows[k]) - base)) for a, k in negatives if a == i)
        values.append(math.log1p(positive_sum) / alpha + math.log1p(negative_sum) / beta)
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize(("alpha", "beta", "base"), [(2.0, 50.0, 0.5), (1.0, 5.0, -0.3)])
def test_multi_similarity_matches_a_loop_over_anchors(alpha: float, beta: float, base: float) -> None:
    x = embeddings()
    positives, negatives = all_pairs(LABELS.tolist())
    actual = MultiSimilarityLoss(alpha=alpha, beta=beta, base=base, reduction="none")(x, LABELS)
    torch.testing.assert_close(actual, reference_multi_similarity(x, LABELS, positives, negatives, alpha, beta, base))


def test_multi_similarity_uses_only_the_mined_pairs() -> None:
    x = embeddings(seed=1)
    mined = MultiSimilarityMiner(epsilon=0.3)(x, LABELS)
    positives, negatives = pairs_of(mined)
    assert positives or negatives
    actual = multi_similarity_loss(x, LABELS, mined, reduction="none")
    torch.testing.assert_close(actual, reference_multi_similarity(x, LABELS, positives, negatives))


def test_triplets_count_as_their_positive_and_negative_pairs() -> None:
    x = embeddings()
    triplets = (torch.tensor([0, 0, 1]), torch.tensor([2, 5, 4]), torch.tensor([1, 3, 7]))
    positives, negatives = pairs_of(triplets)
    torch.testing.assert_close(
        multi_similarity_loss(x, LABELS, triplets, reduction="none"),
        reference_multi_similarity(x, LABELS, positives, negatives),
    )
    pairs = (torch.tensor([0, 0, 1]), torch.tensor([2, 5, 4]), torch.tensor([0, 0, 1]), torch.tensor([1, 3, 7]))
    torch.testing.assert_close(info_nce_loss(x, LABELS, triplets), info_nce_loss(x, LABELS, pairs))


def test_multi_similarity_is_scale_invariant_and_passes_gradcheck() -> None:
    x = embeddings()
    torch.testing.assert_close(multi_similarity_loss(x, LABELS), multi_similarity_loss(10 * x, LABELS))
    assert torch.autograd.gradcheck(
        lambda e: multi_similarity_loss(e, LABELS, alpha=2.0, beta=10.0), x.requires_grad_(True)
    )


# -- InfoNCE ---------------------------------------------------------------------------------------


def reference_info_nce(x, positives, negatives, temperature):
    rows, values = x.tolist(), []
    for a, p in sorted(positives):
        positive = math.exp(cosine(rows[a], rows[p]) / temperature)
        negative = sum(math.exp(cosine(rows[a], rows[n]) / temperature) for anchor, n in negatives if anchor == a)
        values.append(-math.log(positive / (positive + negative)))
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.07, 0.5, 2.0])
def test_info_nce_matches_a_loop_over_positive_pairs(temperature: float) -> None:
    x = embeddings()
    positives, negatives = all_pairs(LABELS.tolist())
    actual = InfoNCELoss(temperature=temperature, reduction="none")(x, LABELS)
    torch.testing.assert_close(actual, reference_info_nce(x, positives, negatives, temperature))


def test_info_nce_for_one_pair_is_cross_entropy_over_the_anchors_similarities() -> None:
    x = embeddings()
    pairs = (torch.tensor([0]), torch.tensor([2]), torch.tensor([0, 0, 0]), torch.tensor([1, 3, 4]))
    similarities = F.cosine_similarity(x[0:1], x[[2, 1, 3, 4]]) / 0.1  # the positive first
    expected = F.cross_entropy(similarities[None], torch.tensor([0]))
    torch.testing.assert_close(info_nce_loss(x, LABELS, pairs, temperature=0.1), expected)


def test_info_nce_with_mined_pairs_and_gradcheck() -> None:
    x = embeddings(seed=2)
    mined = MultiSimilarityMiner(epsilon=0.3)(x, LABELS)
    positives, negatives = pairs_of(mined)
    torch.testing.assert_close(
        info_nce_loss(x, LABELS, mined, temperature=0.5, reduction="none"),
        reference_info_nce(x, positives, negatives, 0.5),
    )
    assert torch.autograd.gradcheck(lambda e: info_nce_loss(e, LABELS, temperature=0.5), x.requires_grad_(True))


def test_a_positive_without_negatives_costs_zero_with_a_finite_gradient() -> None:
    x = embeddings()[:3].requires_grad_(True)
    loss = info_nce_loss(x, torch.tensor([0, 0, 0]))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(x.grad).all()


# -- both ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [MultiSimilarityLoss(), InfoNCELoss()])
def test_a_batch_without_pairs_gives_an_attached_zero(loss: torch.nn.Module) -> None:
    x = embeddings()[:1].requires_grad_(True)
    value = loss(x, LABELS[:1])
    value.backward()
    assert value.item() == 0 and torch.equal(x.grad, torch.zeros_like(x))
    empty = (torch.zeros(0, dtype=torch.long),) * 4
    assert loss(embeddings(), LABELS, empty).item() == 0


@pytest.mark.parametrize("loss", [MultiSimilarityLoss(), InfoNCELoss()])
def test_metric_losses_declare_pairs_and_cosine(loss: torch.nn.Module) -> None:
    assert loss.tasks == ("metric",) and loss.tuple_kind == "pair" and loss.distance == "cosine"


X, Y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)


def indices(*lengths: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.zeros(length, dtype=torch.long) for length in lengths)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((X, Y[:3]), r"got \(4, 2\) torch.float32 and \(3,\) torch.int64"),
        ((X, Y.float()), r"integer labels \(N,\), got .* torch.float32$"),
        ((X, Y, indices(1, 1)), "got 2 tensors"),
        ((X, Y, (torch.zeros(1),) * 3), "1-D integer index tensors"),
        ((X, Y, indices(2, 2, 2, 1)), r"matching lengths in `indices_tuple`, got \[2, 2, 2, 1\]"),
    ],
)
@pytest.mark.parametrize("loss", [MultiSimilarityLoss(), InfoNCELoss()], ids=["multi_similarity", "info_nce"])
def test_bad_input_names_the_loss_and_what_it_got(loss: torch.nn.Module, arguments: tuple, message: str) -> None:
    name = "multi_similarity" if isinstance(loss, MultiSimilarityLoss) else "info_nce"
    with pytest.raises(ValueError, match=f"{name}: expected .*{message}"):
        loss(*arguments)


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (MultiSimilarityLoss, {"alpha": 0.0}, r"multi_similarity: expected `alpha` > 0.0, got 0.0"),
        (MultiSimilarityLoss, {"beta": -1.0}, r"multi_similarity: expected `beta` > 0.0"),
        (MultiSimilarityLoss, {"base": 1.5}, r"multi_similarity: expected `base` in \[-1, 1\]"),
        (InfoNCELoss, {"temperature": 0.0}, r"info_nce: expected `temperature` > 0.0, got 0.0"),
        (InfoNCELoss, {"reduction": "mean_nonzero"}, "info_nce: expected `reduction` in"),
    ],
)
def test_parameters_are_validated_eagerly(cls: type, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**params)
