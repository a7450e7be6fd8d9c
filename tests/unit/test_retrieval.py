from __future__ import annotations

import itertools

import pytest
import torch

from lossforge.evaluation.retrieval import retrieval_metrics


def loop_metrics(embeddings: torch.Tensor, labels: torch.Tensor, k: int) -> dict[str, float]:
    """Recall@k and MAP@R by an explicit loop over queries."""
    n = len(labels)
    recalls, average_precisions = [], []
    for q in range(n):
        others = [i for i in range(n) if i != q]
        r = sum(int(labels[i] == labels[q]) for i in others)
        if r == 0:
            continue
        ranked = sorted(others, key=lambda i: (torch.dist(embeddings[q], embeddings[i]).item(), i))
        recalls.append(float(any(labels[i] == labels[q] for i in ranked[:k])))
        hits, precision_sum = 0, 0.0
        for position, i in enumerate(ranked[:r], start=1):
            if labels[i] == labels[q]:
                hits += 1
                precision_sum += hits / position
        average_precisions.append(precision_sum / r)
    return {
        f"recall_at_{k}": sum(recalls) / len(recalls),
        "map_at_r": sum(average_precisions) / len(average_precisions),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_a_loop(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(30, 4, generator=generator)
    labels = torch.randint(0, 4, (30,), generator=generator)
    labels[0] = 9  # a single-member class is left out of the averages
    got = retrieval_metrics(embeddings, labels, ks=(1, 3))
    for k in (1, 3):
        expected = loop_metrics(embeddings, labels, k)
        assert got[f"recall_at_{k}"] == pytest.approx(expected[f"recall_at_{k}"])
        assert got["map_at_r"] == pytest.approx(expected["map_at_r"])


def test_perfectly_separated_clusters_score_one() -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.tensor(list(itertools.chain.from_iterable([c] * 5 for c in range(3))))
    embeddings = centres[labels] + 0.1 * torch.randn(15, 2, generator=torch.Generator().manual_seed(0))
    metrics = retrieval_metrics(embeddings, labels)
    assert metrics == {"recall_at_1": 1.0, "recall_at_5": 1.0, "map_at_r": 1.0, "knn_accuracy": 1.0}


def test_no_valid_query_gives_zeros() -> None:
    metrics = retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 1, 2]))
    assert set(metrics.values()) == {0.0}
