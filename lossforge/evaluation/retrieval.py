"""Retrieval metrics for embeddings: Recall@k, MAP@R and kNN accuracy, leave-one-out within one set.

Every sample is a query against all the *other* samples of the same set (as metric-learning papers
evaluate on test classes). A query whose class has no other member cannot retrieve anything correct and
is left out of the averages.

```pycon
>>> embeddings = torch.tensor([[0.0], [0.1], [5.0], [5.1], [0.25]])
>>> labels = torch.tensor([0, 0, 1, 1, 1])
>>> metrics = retrieval_metrics(embeddings, labels, ks=(1,))
>>> round(metrics["recall_at_1"], 4)  # the last sample's nearest neighbour is a 0
0.8

```
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def _neighbours(embeddings: Tensor, k: int, cosine: bool, chunk: int = 1024) -> Tensor:
    """Indices of the `k` nearest other samples of every sample, nearest first: `(N, k)`."""
    if cosine:
        embeddings = F.normalize(embeddings, dim=1)
    rows = []
    for start in range(0, len(embeddings), chunk):  # O(chunk × N) memory, so a 10k test set is fine
        block = torch.cdist(embeddings[start : start + chunk], embeddings)  # (chunk, N)
        block[torch.arange(len(block)), torch.arange(start, start + len(block))] = float("inf")  # not self
        rows.append(block.topk(k, dim=1, largest=False).indices)
    return torch.cat(rows)


@torch.no_grad()
def retrieval_metrics(
    embeddings: Tensor, labels: Tensor, *, ks: tuple[int, ...] = (1, 5), knn_k: int = 5, cosine: bool = False
) -> dict[str, float]:
    """Recall@k for each `k` in `ks`, MAP@R and `knn_k`-nearest-neighbour accuracy.

    $$
    \\text{Recall@}k = \\frac{1}{|Q|}\\sum_{q \\in Q} [\\exists\\, i \\le k: y_{(i)} = y_q], \\qquad
    \\text{MAP@R} = \\frac{1}{|Q|}\\sum_{q} \\frac{1}{R_q}\\sum_{i=1}^{R_q} P_q(i)\\,[y_{(i)} = y_q]
    $$

    where $y_{(i)}$ is the label of the $i$-th nearest other sample and $R_q$ the number of
    other samples of the query's class. Recall@1 equals precision@1.

    Args:
        embeddings: `(N, D)` embeddings.
        labels: `(N,)` integer labels.
        ks: the `k` of each Recall@k.
        knn_k: neighbours voting in kNN accuracy (ties go to the class of the nearest voter among them).
        cosine: rank by cosine distance instead of Euclidean.
    """
    embeddings, labels = embeddings.detach().float(), labels.detach()
    n = len(labels)
    counts = torch.bincount(labels)
    others = counts[labels] - 1  # (N,) R_q: same-class samples besides the query
    valid = others > 0
    if n < 2 or not bool(valid.any()):
        return {**{f"recall_at_{k}": 0.0 for k in ks}, "map_at_r": 0.0, "knn_accuracy": 0.0}
    depth = min(n - 1, max(*ks, knn_k, int(others.max())))
    order = _neighbours(embeddings, depth, cosine)  # (N, depth)
    hits = labels[order] == labels[:, None]  # (N, depth)

    metrics = {f"recall_at_{k}": hits[valid, : min(k, depth)].any(dim=1).float().mean().item() for k in ks}

    positions = torch.arange(1, depth + 1, device=hits.device)  # (depth,)
    within_r = positions[None, :] <= others[:, None]  # (N, depth): only the first R_q ranks count
    relevant = hits & within_r
    precision_at_i = relevant.cumsum(dim=1) / positions[None, :]
    average_precision = (precision_at_i * relevant).sum(dim=1) / others.clamp(min=1)
    metrics["map_at_r"] = average_precision[valid].mean().item()

    voters = labels[order[:, : min(knn_k, depth)]]  # (N, k)
    votes = F.one_hot(voters, num_classes=len(counts)).sum(dim=1).float()  # (N, C)
    # Break ties towards nearer neighbours: a tiny bonus that decreases with rank never outvotes a whole vote.
    rank_bonus = F.one_hot(voters, num_classes=len(counts)).float()
    rank_bonus = (rank_bonus * torch.linspace(1e-3, 1e-4, voters.shape[1], device=voters.device)[None, :, None]).amax(
        dim=1
    )
    predicted = (votes + rank_bonus).argmax(dim=1)
    metrics["knn_accuracy"] = (predicted == labels)[valid].float().mean().item()
    return metrics
