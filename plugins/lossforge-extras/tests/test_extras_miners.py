"""The multi-similarity miner against an explicit loop over pairs."""

from __future__ import annotations

import math

import pytest
import torch

from lossforge_extras.miners import MultiSimilarityMiner, multi_similarity_pairs

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3])


def reference_pairs(similarities: list[list[float]], labels: list[int], epsilon: float):
    """The rule of Wang et al. (2019), one anchor at a time."""
    positives, negatives = [], []
    for i, row in enumerate(similarities):
        positive = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        negative = [k for k in range(len(labels)) if labels[k] != labels[i]]
        least_positive = min((row[j] for j in positive), default=math.inf)
        most_negative = max((row[k] for k in negative), default=-math.inf)
        positives += [(i, j) for j in positive if row[j] - epsilon < most_negative]
        negatives += [(i, k) for k in negative if row[k] + epsilon > least_positive]
    return positives, negatives


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairs_match_a_loop(epsilon: float, seed: int) -> None:
    similarities = torch.rand(len(LABELS), len(LABELS), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    a1, p, a2, n = multi_similarity_pairs(similarities, LABELS, epsilon=epsilon)
    positives, negatives = reference_pairs(similarities.tolist(), LABELS.tolist(), epsilon)
    assert list(zip(a1.tolist(), p.tolist(), strict=True)) == positives  # sorted by anchor, then partner
    assert list(zip(a2.tolist(), n.tolist(), strict=True)) == negatives


def test_the_module_mines_cosine_similarities_under_no_grad() -> None:
    embeddings = torch.randn(len(LABELS), 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    mined = MultiSimilarityMiner(epsilon=0.2)(embeddings, LABELS)
    normalized = torch.nn.functional.normalize(embeddings.detach(), dim=1)
    expected = multi_similarity_pairs(normalized @ normalized.T, LABELS, epsilon=0.2)
    assert all(torch.equal(got, want) for got, want in zip(mined, expected, strict=True))
    assert all(index.dtype == torch.int64 and not index.requires_grad for index in mined)


def test_a_huge_margin_keeps_every_pair_of_anchors_with_both_kinds() -> None:
    a1, _, a2, _ = MultiSimilarityMiner(epsilon=10.0)(torch.randn(len(LABELS), 3), LABELS)
    has_positive = {i for i, label in enumerate(LABELS.tolist()) if (LABELS == label).sum() > 1}
    assert set(a1.tolist()) == has_positive and set(a2.tolist()) == has_positive
    assert len(a1) == sum((LABELS == LABELS[i]).sum().item() - 1 for i in has_positive)


def test_validation() -> None:
    with pytest.raises(ValueError, match=r"multi_similarity miner: expected `epsilon` >= 0.0, got -0.1"):
        MultiSimilarityMiner(epsilon=-0.1)
    with pytest.raises(ValueError, match=r"multi_similarity miner: expected embeddings \(N, D\)"):
        MultiSimilarityMiner()(torch.zeros(4), LABELS[:4])
