"""Index tuples — the miner-to-loss contract — and the label masks both sides build them from.

A pair tuple is `(a1, p, a2, n)`: positive pairs `(a1[k], p[k])` (same label, `a1 != p`) and negative
pairs `(a2[k], n[k])` (different labels); a triplet tuple is `(a, p, n)`. All are int64 1-D index
tensors into the batch, the same contract as pytorch-metric-learning. Miners (`lossforge.mining.miners`)
choose tuples; metric losses (`lossforge.losses.metric`) score them, or every tuple of the batch when
no miner is given — both through the helpers here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lossforge.contract import shape

EXPECTED_INPUTS = "embeddings (N, D) of a floating dtype and integer labels (N,)"


def describe_bad_inputs(embeddings: Tensor, labels: Tensor) -> str | None:
    """`None` if `embeddings` is (N, D) floating and `labels` (N,) integer; else what was given.

    ```pycon
    >>> describe_bad_inputs(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)) is None
    True
    >>> describe_bad_inputs(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    'embeddings (4,) torch.float32 and labels (4,) torch.int64'

    ```
    """
    is_integer = not (labels.is_floating_point() or labels.is_complex())
    if (
        embeddings.dim() == 2
        and embeddings.is_floating_point()
        and labels.dim() == 1
        and is_integer
        and labels.shape[0] == embeddings.shape[0]
    ):
        return None
    return f"embeddings {shape(embeddings)} {embeddings.dtype} and labels {shape(labels)} {labels.dtype}"


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Boolean (N, N) masks of the positive pairs (same label, `i != j`) and negative pairs.

    ```pycon
    >>> positive, negative = label_masks(torch.tensor([0, 0, 1]))
    >>> positive
    tensor([[False,  True, False],
            [ True, False, False],
            [False, False, False]])
    >>> negative.sum().item()
    4

    ```
    """
    same = labels[:, None] == labels[None, :]  # (N, N)
    positive = same.clone()
    positive.fill_diagonal_(False)
    return positive, ~same


def all_pair_indices(labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every positive pair and every negative pair of the batch, as `(a1, p, a2, n)`.

    Examples:
        >>> all_pair_indices(torch.tensor([0, 0, 1]))
        (tensor([0, 1]), tensor([1, 0]), tensor([0, 1, 2, 2]), tensor([2, 2, 0, 1]))
    """
    positive, negative = label_masks(labels)
    anchors, positives = torch.nonzero(positive, as_tuple=True)
    negative_anchors, negatives = torch.nonzero(negative, as_tuple=True)
    return anchors, positives, negative_anchors, negatives


def all_triplet_indices(labels: Tensor, max_triplets: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Every valid triplet `(a, p, n)`, or a uniform random sample of `max_triplets` of them.

    A triplet is valid when `label[a] == label[p]`, `a != p` and `label[n] != label[a]`. The
    triplets are numbered 0 … T−1 in (a, p, n) order without being built: positive pair `k` of anchor
    `a` owns a block of `#negatives(a)` consecutive numbers. Sampling draws distinct numbers (a random
    permutation when T ≤ 4·max_triplets, else repeated draws with replacement until enough distinct ones,
    then a uniform subset) and decodes only those, so memory is O(N² + max_triplets), never O(T).
    The sample uses torch's global generator (`torch.manual_seed` makes it repeatable).

    Args:
        labels: class labels.
        max_triplets: keep at most this many triplets (uniformly sampled without replacement);
            `None` keeps all of them (O(T) memory, T up to N³).

    Shape:
        - labels: $(N,)$
        - Output: three $(T,)$ int64 tensors `(a, p, n)`, sorted

    Examples:
        >>> all_triplet_indices(torch.tensor([0, 0, 1]))
        (tensor([0, 1]), tensor([1, 0]), tensor([2, 2]))
    """
    positive, negative = label_masks(labels)
    pair_anchor, pair_positive = torch.nonzero(positive, as_tuple=True)  # (K,), sorted by anchor
    negatives_of = torch.nonzero(negative, as_tuple=True)[1]  # all anchors' negatives, row by row
    negative_count = negative.sum(dim=1)  # (N,)
    negative_start = torch.cumsum(negative_count, dim=0) - negative_count  # (N,) offsets into negatives_of
    per_pair = negative_count[pair_anchor]  # (K,) triplets owned by each positive pair
    block_end = torch.cumsum(per_pair, dim=0)  # (K,)
    total = int(block_end[-1]) if block_end.numel() else 0
    if max_triplets is None or total <= max_triplets:
        numbers = torch.arange(total, device=labels.device)
    else:
        numbers = _sample_distinct(total, max_triplets, labels.device)
    pair = torch.searchsorted(block_end, numbers, right=True)  # (T,) which positive pair owns each number
    offset = numbers - (block_end[pair] - per_pair[pair])  # (T,) which of that anchor's negatives
    anchor = pair_anchor[pair]
    return anchor, pair_positive[pair], negatives_of[negative_start[anchor] + offset]


def pairs_from_triplets(triplets: tuple[Tensor, Tensor, Tensor], num: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The distinct pairs in `(a, p, n)` triplets over a batch of `num`: positives `(a, p)` and
    negatives `(a, n)`, as `(a1, p, a2, n)`, each pair once, sorted.

    How a pair loss trains on a triplet miner's choice (`loss=contrastive miner=semihard_triplets`).
    pytorch-metric-learning converts the same way but keeps a pair once per triplet that holds it; here a pair
    loss scores each chosen pair once, whichever number of triplets chose it.

    ```pycon
    >>> pairs_from_triplets((torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0]), torch.tensor([2, 3, 2])), 4)
    (tensor([0, 1]), tensor([1, 0]), tensor([0, 0, 1]), tensor([2, 3, 2]))

    ```
    """
    anchor, positive, negative = triplets
    positive_codes = torch.unique(anchor * num + positive)  # sorted, each pair once
    negative_codes = torch.unique(anchor * num + negative)
    return positive_codes // num, positive_codes % num, negative_codes // num, negative_codes % num


def empty_tuple(count: int, device: torch.device) -> tuple[Tensor, ...]:
    """`count` empty int64 index tensors: the tuple of a batch that has no pair or triplet."""
    return tuple(torch.empty(0, dtype=torch.long, device=device) for _ in range(count))


def _sample_distinct(total: int, count: int, device: torch.device) -> Tensor:
    """`count` distinct integers drawn uniformly from `range(total)`, sorted, in O(count) memory."""
    if total <= 4 * count:
        return torch.randperm(total, device=device)[:count].sort().values
    drawn = torch.empty(0, dtype=torch.long, device=device)
    while drawn.numel() < count:  # with total > 4·count, each round keeps most of its draws
        more = torch.randint(total, (count - drawn.numel() + count // 8 + 1,), device=device)
        drawn = torch.unique(torch.cat([drawn, more]))
    # The set of distinct values drawn is symmetric in all numbers, so a uniform subset of it is uniform.
    return drawn[torch.randperm(drawn.numel(), device=device)[:count]].sort().values


def padded_positive_distances(distances: Tensor, positive: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each row's positive-pair distances packed to the left of a (C, P) matrix, padded with `inf`.

    Searching only the positive pairs (P = the largest class, minus one) instead of all N entries of a
    row makes `searchsorted` over a batch of C classes about C times cheaper.

    Args:
        distances: rows of a distance matrix.
        positive: the matching rows of the positive-pair mask.

    Shape:
        - distances, positive: $(C, N)$
        - Output: `anchor`, `positive_index`, `slot` — $(K,)$ for the K positive pairs in
          row-major order, with `padded[anchor, slot] == distances[anchor, positive_index]` — and
          `padded` $(C, \\max(P, 1))$

    Examples:
        >>> distances = torch.tensor([[0.0, 2.0, 1.0], [2.0, 0.0, 3.0]])
        >>> positive = torch.tensor([[False, True, True], [True, False, False]])
        >>> padded_positive_distances(distances, positive)
        (tensor([0, 0, 1]), tensor([1, 2, 0]), tensor([0, 1, 0]), tensor([[2., 1.],
                [2., inf]]))
    """
    anchor, positive_index = torch.nonzero(positive, as_tuple=True)  # (K,), row-major
    counts = positive.sum(dim=1)  # (C,)
    row_start = torch.cumsum(counts, dim=0) - counts  # (C,)
    slot = torch.arange(anchor.numel(), device=anchor.device) - row_start[anchor]  # (K,)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    padded = distances.new_full((distances.shape[0], width), torch.inf)  # (C, P)
    padded[anchor, slot] = distances[anchor, positive_index]
    return anchor, positive_index, slot, padded
