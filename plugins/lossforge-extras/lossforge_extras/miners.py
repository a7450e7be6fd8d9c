"""The multi-similarity pair miner (Wang et al. 2019): keep the pairs that break the ranking by a margin.

A miner is called `miner(embeddings (N, D), labels (N,))` and returns int64 index tensors
`(a1, p, a2, n)` — positive pairs `(a1[k], p[k])` and negative pairs `(a2[k], n[k])` — computed under
`torch.no_grad()`; the lossforge miner contract. Pairs are ordered (`(i, j)` and `(j, i)` are both
candidates) and come out sorted by anchor, then partner.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from lossforge_extras._common import check_at_least
from lossforge_extras.similarity import check_embeddings, cosine_similarities, label_masks


def multi_similarity_pairs(
    similarities: Tensor, labels: Tensor, *, epsilon: float = 0.1
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The informative pairs of a similarity matrix, by the multi-similarity rule.

    $$
    (i, k) \text{ kept negative} \iff S_{ik} + \epsilon > \min_{j \in P_i} S_{ij}, \qquad
    (i, j) \text{ kept positive} \iff S_{ij} - \epsilon < \max_{k \in N_i} S_{ik}
    $$

    A negative is kept if it is more similar to the anchor than the anchor's least similar positive, less
    $\epsilon$; a positive if it is less similar than the most similar negative, plus $\epsilon$.
    An anchor without positives keeps no negative, one without negatives no positive.

    Args:
        similarities: the batch's similarity matrix $S$, `(N, N)` (larger is more similar).
        labels: class labels `(N,)`.
        epsilon: the margin $\epsilon \ge 0$.

    Shape:
        - Output: four `(K,)` int64 tensors `(a1, p, a2, n)`.

    Examples:
        >>> similarities = torch.tensor([[1.0, 0.9, 0.2], [0.9, 1.0, 0.95], [0.2, 0.95, 1.0]])
        >>> multi_similarity_pairs(similarities, torch.tensor([0, 0, 1]))
        (tensor([1]), tensor([0]), tensor([1]), tensor([2]))
    """
    positive, negative = label_masks(labels)  # (N, N) each
    least_similar_positive = similarities.masked_fill(~positive, torch.inf).amin(dim=1, keepdim=True)  # (N, 1)
    most_similar_negative = similarities.masked_fill(~negative, -torch.inf).amax(dim=1, keepdim=True)  # (N, 1)
    hard_negative = negative & (similarities + epsilon > least_similar_positive)
    hard_positive = positive & (similarities - epsilon < most_similar_negative)
    return (*hard_positive.nonzero(as_tuple=True), *hard_negative.nonzero(as_tuple=True))


class MultiSimilarityMiner(nn.Module):
    r"""Multi-similarity pair mining on cosine similarities, registered as the miner `multi_similarity`.

    $$
    (i, k) \text{ kept negative} \iff S_{ik} + \epsilon > \min_{j \in P_i} S_{ij}, \qquad
    (i, j) \text{ kept positive} \iff S_{ij} - \epsilon < \max_{k \in N_i} S_{ik}
    $$

    Made for the `multi_similarity` loss (`loss=multi_similarity miner=multi_similarity`); any pair
    loss takes its output.

    Args:
        epsilon: the margin $\epsilon \ge 0$; 0.1 in the paper and in pytorch-metric-learning.

    Shape:
        - embeddings: `(N, D)`; labels: `(N,)`; output: four `(K,)` int64 tensors `(a1, p, a2, n)`.

    Examples:
        >>> miner = MultiSimilarityMiner(epsilon=0.1)
        >>> embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> [indices.tolist() for indices in miner(embeddings, torch.tensor([0, 0, 1]))]
        [[1], [0], [1], [2]]
    """

    tuple_kind: ClassVar[str] = "pair"
    # A margin on cosine similarities: from 0 to 0.5, around the paper's 0.1 (larger keeps most pairs).
    search_space: ClassVar[dict[str, dict[str, float]]] = {"epsilon": {"low": 0.0, "high": 0.5}}

    def __init__(self, *, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = check_at_least("multi_similarity miner", "epsilon", epsilon, 0.0)

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        check_embeddings("multi_similarity miner", embeddings, labels)
        return multi_similarity_pairs(cosine_similarities(embeddings), labels, epsilon=self.epsilon)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"
