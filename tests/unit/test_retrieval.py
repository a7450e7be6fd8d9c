"""Recall@k, MAP@R and kNN accuracy against an explicit loop over queries, and on hand-built embeddings whose
values are worked out in the comments: kNN votes and their ties, cosine against Euclidean ranking."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch

from lossforge.evaluation.retrieval import retrieval_metrics


def loop_metrics(embeddings: torch.Tensor, labels: torch.Tensor, k: int, knn_k: int) -> dict[str, float]:
    """Recall@k, MAP@R and ``knn_k``-NN accuracy by an explicit loop over queries."""
    n = len(labels)
    recalls, average_precisions, knn_hits = [], [], []
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
        voters = [int(labels[i]) for i in ranked[:knn_k]]  # nearest first
        votes = Counter(voters)
        predicted = next(v for v in voters if votes[v] == max(votes.values()))  # a tie: the nearest voter's class
        knn_hits.append(float(predicted == labels[q]))
    return {
        f"recall_at_{k}": sum(recalls) / len(recalls),
        "map_at_r": sum(average_precisions) / len(average_precisions),
        "knn_accuracy": sum(knn_hits) / len(knn_hits),
    }


@pytest.mark.parametrize("knn_k", [1, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_a_loop(seed: int, knn_k: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(30, 4, generator=generator)
    labels = torch.randint(0, 4, (30,), generator=generator)
    labels[0] = 9  # a single-member class is left out of the averages
    got = retrieval_metrics(embeddings, labels, ks=(1, 3), knn_k=knn_k)
    for k in (1, 3):
        expected = loop_metrics(embeddings, labels, k, knn_k)
        assert got[f"recall_at_{k}"] == pytest.approx(expected[f"recall_at_{k}"])
        assert got["map_at_r"] == pytest.approx(expected["map_at_r"])
        assert got["knn_accuracy"] == pytest.approx(expected["knn_accuracy"])


# Six points on a line, classes 0 and 1; no two distances from one point are equal, so every ranking is exact.
#
#   point  position  class   its neighbours' classes, nearest first   1-NN  3-NN  5-NN   2-NN      4-NN
#   q        0.0       1     0 1 0 1 1                                 0 ✗   0 ✗   1 ✓    0 ✗ tie   0 ✗ tie
#   a1       1.0       0     1 1 0 1 1                                 1 ✗   1 ✗   1 ✗    1 ✗       1 ✗
#   b1       2.1       1     0 0 1 1 1                                 0 ✗   0 ✗   1 ✓    0 ✗       0 ✗ tie
#   a2       3.3       0     1 1 0 1 1                                 1 ✗   1 ✗   1 ✗    1 ✗       1 ✗
#   b2       4.6       1     0 1 1 0 1                                 0 ✗   1 ✓   1 ✓    0 ✗ tie   0 ✗ tie
#   b3       6.0       1     1 0 1 0 1                                 1 ✓   1 ✓   1 ✓    1 ✓ tie   1 ✓ tie
#
# For q the five-neighbour majority (class 1, three votes) differs from the one- and three-neighbour votes
# (class 0). With an even number of voters a tie goes to the class of the nearest voter among them: b3's
# nearest neighbour is a 1, so b3 is right with 2 and 4 voters, while the lower class index (0) would win
# if ties were broken by argmax alone, and the farther voters' class if nearness were counted backwards.
LINE = torch.tensor([[0.0], [1.0], [2.1], [3.3], [4.6], [6.0]])
LINE_LABELS = torch.tensor([1, 0, 1, 0, 1, 1])


@pytest.mark.parametrize(
    ("knn_k", "correct"),
    [(1, ["b3"]), (3, ["b2", "b3"]), (5, ["q", "b1", "b2", "b3"])],
    ids=["1-NN", "3-NN", "5-NN"],
)
def test_knn_accuracy_counts_exactly_knn_k_voters(knn_k: int, correct: list[str]) -> None:
    metrics = retrieval_metrics(LINE, LINE_LABELS, knn_k=knn_k)
    assert metrics["knn_accuracy"] == pytest.approx(len(correct) / 6)


def test_knn_accuracy_votes_five_neighbours_by_default() -> None:
    assert retrieval_metrics(LINE, LINE_LABELS)["knn_accuracy"] == pytest.approx(4 / 6)  # q, b1, b2, b3


@pytest.mark.parametrize("knn_k", [2, 4])
def test_a_knn_tie_goes_to_the_class_of_the_nearest_voter(knn_k: int) -> None:
    # Only b3 is right (see the table): its tie is between its nearest voter's class 1 and class 0.
    assert retrieval_metrics(LINE, LINE_LABELS, knn_k=knn_k)["knn_accuracy"] == pytest.approx(1 / 6)


def test_cosine_ranks_by_angle_where_euclidean_ranks_by_position() -> None:
    # Class 0 lies along the x-axis, except C, which points 63° up; class 1 lies along the y-axis. Each class
    # has three members, so R = 2 for every query.
    #
    #   query  Euclidean order (squared distance)       R@1  AP@R    cosine order (angle)        R@1  AP@R
    #   A(3,0)  C 8 ✓, B 9 ✓, D 10, E 18, F 90           ✓    1       B 0° ✓, C 63° ✓, D E F 90°    ✓    1
    #   B(6,0)  A 9 ✓, C 29 ✓, D 37, E 45, F 117         ✓    1       A 0° ✓, C 63° ✓, D E F 90°    ✓    1
    #   C(1,2)  D 2 ✗, E 2 ✗, A 8 ✓, B 29, F 50          ✗    0       D E F 27° ✗✗✗, A B 63°       ✗    0
    #   D(0,1)  C 2 ✗, E 4 ✓, A 10, B 37, F 64           ✗    1/4     E F 0° ✓✓, …                  ✓    1
    #   E(0,3)  C 2 ✗, D 4 ✓, A 18, F 36, B 45           ✗    1/4     D F 0° ✓✓, …                  ✓    1
    #   F(0,9)  E 36 ✓, C 50 ✗, D 64, A 90, B 117        ✓    1/2     D E 0° ✓✓, …                  ✓    1
    #
    # (AP@R: the precision at each relevant rank within the first R, summed, over R: D finds E at rank 2, 1/2 / 2.)
    embeddings = torch.tensor([[3.0, 0.0], [6.0, 0.0], [1.0, 2.0], [0.0, 1.0], [0.0, 3.0], [0.0, 9.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    euclidean = retrieval_metrics(embeddings, labels, ks=(1,))
    cosine = retrieval_metrics(embeddings, labels, ks=(1,), cosine=True)
    assert euclidean["recall_at_1"] == pytest.approx(3 / 6) and euclidean["map_at_r"] == pytest.approx(3 / 6)
    assert cosine["recall_at_1"] == pytest.approx(5 / 6) and cosine["map_at_r"] == pytest.approx(5 / 6)


def test_perfectly_separated_clusters_score_one() -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.tensor(list(itertools.chain.from_iterable([c] * 5 for c in range(3))))
    embeddings = centres[labels] + 0.1 * torch.randn(15, 2, generator=torch.Generator().manual_seed(0))
    metrics = retrieval_metrics(embeddings, labels)
    assert metrics == {"recall_at_1": 1.0, "recall_at_5": 1.0, "map_at_r": 1.0, "knn_accuracy": 1.0}


def test_no_valid_query_gives_zeros() -> None:
    metrics = retrieval_metrics(torch.randn(3, 2), torch.tensor([0, 1, 2]))
    assert set(metrics.values()) == {0.0}
