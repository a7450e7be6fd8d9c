"""Miners: choose which pairs or triplets of a batch a metric loss sees.

A miner is called `miner(embeddings (N, D), labels (N,))` and returns plain int64 index tensors, the
same contract as pytorch-metric-learning (PML):

* pair miners (`tuple_kind = "pair"`): `(a1, p, a2, n)` — positive pairs `(a1[k], p[k])` (same
  label, `a1 != p`) and negative pairs `(a2[k], n[k])` (different labels);
* triplet miners (`tuple_kind = "triplet"`): `(a, p, n)`.

Pairs are ordered, as in PML: `(i, j)` and `(j, i)` are both listed. Every miner works under
`torch.no_grad()` from ONE (N, N) distance matrix (or from the labels alone) and never builds an
O(N³) tensor. Indices come out sorted by anchor, then positive, then negative.

The pure functions (`*_indices`) take a precomputed distance matrix, so they can be tested on
hand-built matrices; the modules compute it from the embeddings and call them.

`margin` and `distance` default to `None`, meaning "use the loss's": the training pipeline fills
them from the loss so a loss and its miner share one margin and one distance unless told otherwise.
Still `None` when called, they fall back to the defaults of the matching lossforge loss: pair miners
use `"euclidean"` and margin 1.0 (`contrastive`), triplet miners `"squared_euclidean"` and margin
0.2 (`triplet`). PML's miners instead default to Euclidean distance on normalised embeddings, and
PML's examples pair a miner margin of 0.2 with a loss margin of 0.05.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from lossforge.contract import Categorical, Prior
from lossforge.mining.distances import check_distance, pairwise_distance
from lossforge.mining.tuples import (
    EXPECTED_INPUTS,
    all_pair_indices,
    all_triplet_indices,
    describe_bad_inputs,
    empty_tuple,
    label_masks,
    padded_positive_distances,
    pairs_from_triplets,
)

PAIR_DEFAULT_DISTANCE, PAIR_DEFAULT_MARGIN = "euclidean", 1.0
TRIPLET_DEFAULT_DISTANCE, TRIPLET_DEFAULT_MARGIN = "squared_euclidean", 0.2

_CHUNK_ELEMENTS = 1 << 22
"""What a metric loss or miner expects, for error messages."""


def hard_pair_indices(distances: Tensor, labels: Tensor, margin: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Hard pairs: positives farther than their anchor's closest negative; negatives closer than their
    anchor's farthest positive or inside the margin.

    $$
    (a, p) \\text{ hard} \\iff d(a, p) > \\min_{n} d(a, n), \\qquad
    (a, n) \\text{ hard} \\iff d(a, n) < \\max_{p} d(a, p) \\ \\text{or}\\ d(a, n) < m
    $$

    Inequalities are strict (a tie is not hard). The minimum over no negatives is $+\\infty$ (an
    anchor without negatives has no hard positive), the maximum over no positives $-\\infty$ (only
    the margin applies). A negative inside the margin is exactly one with non-zero contrastive loss; every
    positive has non-zero loss, so for positives only the ranking test says something.

    Args:
        distances: the batch's distance matrix.
        labels: class labels.
        margin: the contrastive margin $m$, in the units of `distances`.

    Shape:
        - distances: $(N, N)$, labels: $(N,)$
        - Output: four $(K,)$ int64 tensors `(a1, p, a2, n)`

    Examples:
        >>> distances = torch.tensor([[0.0, 3.0, 2.0], [3.0, 0.0, 5.0], [2.0, 5.0, 0.0]])
        >>> hard_pair_indices(distances, torch.tensor([0, 0, 1]), margin=1.0)
        (tensor([0]), tensor([1]), tensor([0]), tensor([2]))
    """
    if labels.numel() == 0:  # reductions over an empty dim fail
        return empty_tuple(4, labels.device)  # type: ignore[return-value]
    positive, negative = label_masks(labels)
    farthest_positive = distances.masked_fill(~positive, -torch.inf).amax(dim=1, keepdim=True)  # (N, 1)
    closest_negative = distances.masked_fill(~negative, torch.inf).amin(dim=1, keepdim=True)  # (N, 1)
    hard_positive = positive & (distances > closest_negative)  # (N, N)
    hard_negative = negative & ((distances < farthest_positive) | (distances < margin))  # (N, N)
    anchors, positives = torch.nonzero(hard_positive, as_tuple=True)
    negative_anchors, negatives = torch.nonzero(hard_negative, as_tuple=True)
    return anchors, positives, negative_anchors, negatives


def batch_hard_triplet_indices(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Batch-hard triplets: each anchor with its farthest positive and its closest negative.

    $$
    p(a) = \\operatorname{arg\\,max}_{p:\\, y_p = y_a,\\, p \\ne a} d(a, p), \\qquad
    n(a) = \\operatorname{arg\\,min}_{n:\\, y_n \\ne y_a} d(a, n)
    $$

    Only anchors with at least one positive and one negative get a triplet. Ties go to the lowest index
    (`torch.max`/`torch.min` return the first extreme), which is also what PML's `BatchHardMiner`
    does, so with the same distance both return the same triplets.

    Args:
        distances: the batch's distance matrix.
        labels: class labels.

    Shape:
        - distances: $(N, N)$, labels: $(N,)$
        - Output: three $(A,)$ int64 tensors `(a, p, n)`, $A \\le N$

    Examples:
        >>> distances = torch.tensor([[0.0, 1.0, 4.0, 2.0], [1.0, 0.0, 3.0, 3.0],
        ...                           [4.0, 3.0, 0.0, 1.0], [2.0, 3.0, 1.0, 0.0]])
        >>> batch_hard_triplet_indices(distances, torch.tensor([0, 0, 0, 1]))
        (tensor([0, 1, 2]), tensor([2, 2, 0]), tensor([3, 3, 3]))
    """
    num = labels.numel()
    if num == 0:
        return empty_tuple(3, labels.device)  # type: ignore[return-value]
    # Few passes over (N, N): at small N each one is a fixed cost that a step pays (see benchmarks/README).
    same = labels[:, None] == labels[None, :]  # (N, N), the diagonal included
    positive_distances = distances.masked_fill(~same, -torch.inf)  # (N, N)
    positive_distances.fill_diagonal_(-torch.inf)  # a != p
    farthest_positive = positive_distances.argmax(dim=1)  # (N,)
    closest_negative = distances.masked_fill(same, torch.inf).argmin(dim=1)  # (N,)
    class_size = same.sum(dim=1)  # (N,): a positive if > 1, a negative if < N
    anchor = torch.nonzero((class_size > 1) & (class_size < num), as_tuple=True)[0]  # (A,)
    return anchor, farthest_positive[anchor], closest_negative[anchor]


def semihard_triplet_indices(distances: Tensor, labels: Tensor, margin: float) -> tuple[Tensor, Tensor, Tensor]:
    """FaceNet semi-hard triplets: for each positive pair, the closest negative beyond the positive.

    For every positive pair $(a, p)$, the negative

    $$
    n(a, p) = \\operatorname{arg\\,min}_{n:\\, y_n \\ne y_a} d(a, n)
    \\quad \\text{subject to} \\quad d(a, p) < d(a, n) < d(a, p) + m
    $$

    i.e. the hardest negative that is still farther than the positive (ties: lowest index). When no
    negative lies in that band the pair is dropped: any negative beyond $d(a, p) + m$ has zero
    triplet loss and would only dilute a mean, and one closer than the positive is the "hard" negative
    that FaceNet avoids because it can collapse training early. (PML's `TripletMarginMiner` with
    `type_of_triplets="semihard"` instead returns *every* negative in the band, upper bound included.)

    Each anchor's negative distances are sorted once and the band's lower edge found by
    `searchsorted`, over row chunks: O(N² log N) time, O(N²) memory.

    Args:
        distances: the batch's distance matrix.
        labels: class labels.
        margin: the triplet margin $m$, in the units of `distances`.

    Shape:
        - distances: $(N, N)$, labels: $(N,)$
        - Output: three $(K,)$ int64 tensors `(a, p, n)`, at most one per positive pair

    Examples:
        >>> distances = torch.tensor([[0.0, 1.0, 1.5, 3.0], [1.0, 0.0, 0.5, 1.2],
        ...                           [1.5, 0.5, 0.0, 2.0], [3.0, 1.2, 2.0, 0.0]])
        >>> semihard_triplet_indices(distances, torch.tensor([0, 0, 1, 1]), margin=1.0)
        (tensor([0, 1]), tensor([1, 0]), tensor([2, 3]))
    """
    positive, negative = label_masks(labels)
    num = distances.shape[0]
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(num, 1))
    found: list[tuple[Tensor, Tensor, Tensor]] = []
    for start in range(0, num, rows_per_chunk):
        rows = slice(start, start + rows_per_chunk)
        chunk = distances[rows]  # (C, N)
        negative_distances = chunk.masked_fill(~negative[rows], torch.inf)  # (C, N)
        # stable: equally close negatives keep index order, so the lowest index wins ties
        sorted_distances, order = negative_distances.sort(dim=1, stable=True)  # (C, N)
        anchor, positive_index, slot, padded = padded_positive_distances(chunk, positive[rows])
        # For every positive pair: the first negative strictly farther than d(a, p).
        first = torch.searchsorted(sorted_distances, padded, right=True)[anchor, slot]  # (K,)
        first_clamped = first.clamp_max(num - 1)
        candidate = sorted_distances[anchor, first_clamped]  # (K,); inf past the last negative
        semihard = (first < num) & (candidate < chunk[anchor, positive_index] + margin)  # (K,)
        anchor, positive_index = anchor[semihard], positive_index[semihard]
        negative_index = order[anchor, first_clamped[semihard]]
        found.append((anchor + start, positive_index, negative_index))
    if not found:
        return empty_tuple(3, labels.device)  # type: ignore[return-value]
    return tuple(torch.cat(parts) for parts in zip(*found, strict=True))  # type: ignore[return-value]


# -- modules ---------------------------------------------------------------------------------------


class _Miner(nn.Module):
    """Shared plumbing: names for messages, input checks, margin/distance validation and fallbacks."""

    name: ClassVar[str] = "miner"
    tuple_kind: ClassVar[str] = "pair"
    default_distance: ClassVar[str] = PAIR_DEFAULT_DISTANCE
    default_margin: ClassVar[float] = PAIR_DEFAULT_MARGIN
    margin: float | None = None  # None: the loss's margin, else ``default_margin``
    distance: str | None = None  # None: the loss's distance, else ``default_distance``

    def _check_options(self, margin: float | None, distance: str | None) -> None:
        if margin is not None and not margin >= 0:
            raise ValueError(f"{self.name}: expected `margin` >= 0 or None, got {margin}")
        if distance is not None:
            check_distance(distance, owner=self.name)

    def _check_inputs(self, embeddings: Tensor, labels: Tensor) -> None:
        got = describe_bad_inputs(embeddings, labels)
        if got is not None:
            raise ValueError(f"{self.name}: expected {EXPECTED_INPUTS}, got {got}")

    def _distances(self, embeddings: Tensor) -> Tensor:
        return pairwise_distance(embeddings.detach(), distance=self.distance or self.default_distance)  # (N, N)

    def _margin(self) -> float:
        return self.default_margin if self.margin is None else self.margin


class AllPairsMiner(_Miner):
    """Every positive pair and every negative pair, `(a1, p, a2, n)`; see `all_pair_indices`.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: four int64 index tensors

    Examples:
        >>> AllPairsMiner()(torch.randn(3, 2), torch.tensor([0, 0, 1]))
        (tensor([0, 1]), tensor([1, 0]), tensor([0, 1, 2, 2]), tensor([2, 2, 0, 1]))
    """

    name = "all_pairs"
    tuple_kind = "pair"

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        self._check_inputs(embeddings, labels)
        return all_pair_indices(labels)


class HardPairsMiner(_Miner):
    """Hard positive and negative pairs, `(a1, p, a2, n)`; the definition is `hard_pair_indices`.

    Args:
        margin: negatives closer than this are hard; `None` → the loss's margin, else 1.0.
        distance: distance name; `None` → the loss's distance, else `"euclidean"`.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: four int64 index tensors

    Examples:
        >>> embeddings = torch.tensor([[0.0], [3.0], [2.0]])
        >>> HardPairsMiner(margin=1.5)(embeddings, torch.tensor([0, 0, 1]))
        (tensor([0, 1]), tensor([1, 0]), tensor([0, 1, 2]), tensor([2, 2, 1]))
    """

    name = "hard_pairs"
    tuple_kind = "pair"
    # None keeps the loss's (tuned) margin; the others free the miner's, around contrastive's 1.
    search_space: ClassVar[dict[str, Prior]] = {"margin": Categorical((None, 0.25, 0.5, 1.0, 2.0))}

    def __init__(self, *, margin: float | None = None, distance: str | None = None) -> None:
        super().__init__()
        self._check_options(margin, distance)
        self.margin, self.distance = margin, distance

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        self._check_inputs(embeddings, labels)
        return hard_pair_indices(self._distances(embeddings), labels, self._margin())

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}"


class AllTripletsMiner(_Miner):
    """Every valid triplet `(a, p, n)`, capped at `max_triplets` by uniform sampling.

    Needs no distances. The cap keeps memory bounded (a batch of 1024 in 10 classes has ~10⁸ triplets);
    see `all_triplet_indices` for how the sample is drawn without enumerating all triplets.

    Args:
        max_triplets: keep at most this many triplets, sampled uniformly without replacement.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: three int64 index tensors `(a, p, n)`

    Examples:
        >>> AllTripletsMiner(max_triplets=100)(torch.randn(3, 2), torch.tensor([0, 0, 1]))
        (tensor([0, 1]), tensor([1, 0]), tensor([2, 2]))
    """

    name = "all_triplets"
    tuple_kind = "triplet"
    default_distance = TRIPLET_DEFAULT_DISTANCE
    default_margin = TRIPLET_DEFAULT_MARGIN
    # max_triplets is a memory cap, not a hyper-parameter: nothing to tune.
    search_space: ClassVar[dict[str, Prior]] = {}

    def __init__(self, *, max_triplets: int = 100_000) -> None:
        super().__init__()
        if not max_triplets >= 1:
            raise ValueError(f"{self.name}: expected `max_triplets` >= 1, got {max_triplets}")
        self.max_triplets = int(max_triplets)

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._check_inputs(embeddings, labels)
        return all_triplet_indices(labels, self.max_triplets)

    def extra_repr(self) -> str:
        return f"max_triplets={self.max_triplets}"


class HardTripletsMiner(_Miner):
    """Batch-hard triplets `(a, p, n)`: farthest positive, closest negative per anchor.

    See `batch_hard_triplet_indices` (ties: lowest index). No margin is involved.

    Args:
        distance: distance name; `None` → the loss's distance, else `"squared_euclidean"`
            (any monotone transform of the Euclidean distance picks the same triplets).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: three int64 index tensors `(a, p, n)`, at most one triplet per anchor

    Examples:
        >>> embeddings = torch.tensor([[0.0], [1.0], [3.0], [1.5]])
        >>> HardTripletsMiner()(embeddings, torch.tensor([0, 0, 0, 1]))
        (tensor([0, 1, 2]), tensor([2, 2, 0]), tensor([3, 3, 3]))
    """

    name = "hard_triplets"
    tuple_kind = "triplet"
    default_distance = TRIPLET_DEFAULT_DISTANCE
    default_margin = TRIPLET_DEFAULT_MARGIN
    # Only `distance`, which is the loss's choice (it sets the margin's units and the evaluation): nothing.
    search_space: ClassVar[dict[str, Prior]] = {}

    def __init__(self, *, distance: str | None = None) -> None:
        super().__init__()
        self._check_options(None, distance)
        self.distance = distance

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._check_inputs(embeddings, labels)
        distance = self.distance or self.default_distance
        # The square root is monotone: the squared distances rank alike (up to distances below 1e-6, which
        # the Euclidean distance clamps to one value), and skip two passes over (N, N).
        distances = pairwise_distance(
            embeddings.detach(), distance="squared_euclidean" if distance == "euclidean" else distance
        )  # (N, N)
        return batch_hard_triplet_indices(distances, labels)

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}"


class SemiHardTripletsMiner(_Miner):
    """FaceNet semi-hard triplets `(a, p, n)`: per positive pair, the closest negative in the band
    $d(a, p) < d(a, n) < d(a, p) + m$; pairs without one are dropped (`semihard_triplet_indices`).

    Args:
        margin: the band's width $m$; `None` → the loss's margin, else 0.2.
        distance: distance name; `None` → the loss's distance, else `"squared_euclidean"`.

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: three int64 index tensors `(a, p, n)`, at most one triplet per positive pair

    Examples:
        >>> embeddings = torch.tensor([[0.0], [1.0], [1.5], [3.5]])
        >>> SemiHardTripletsMiner(margin=1.0, distance="euclidean")(embeddings, torch.tensor([0, 0, 1, 1]))
        (tensor([0, 3]), tensor([1, 2]), tensor([2, 1]))
    """

    name = "semihard_triplets"
    tuple_kind = "triplet"
    default_distance = TRIPLET_DEFAULT_DISTANCE
    default_margin = TRIPLET_DEFAULT_MARGIN
    # None keeps the loss's (tuned) margin; the others free the band's width, around triplet's 0.2.
    search_space: ClassVar[dict[str, Prior]] = {"margin": Categorical((None, 0.05, 0.1, 0.2, 0.5, 1.0))}

    def __init__(self, *, margin: float | None = None, distance: str | None = None) -> None:
        super().__init__()
        self._check_options(margin, distance)
        self.margin, self.distance = margin, distance

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._check_inputs(embeddings, labels)
        return semihard_triplet_indices(self._distances(embeddings), labels, self._margin())

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}"


class PairsFromTriplets(nn.Module):
    """A triplet miner feeding a pair loss: the distinct pairs of its triplets (`pairs_from_triplets`).

    Built by the training pipeline when a pair loss is given a triplet miner, so that
    `loss=contrastive miner=semihard_triplets` trains the contrastive loss on the positive and negative
    pairs of the semi-hard triplets (pytorch-metric-learning's convention for a pair loss and a triplet
    miner). The miner keeps its own margin: a triplet margin (a difference of distances) is not a
    contrastive margin (a distance).

    Examples:
        >>> miner = PairsFromTriplets(AllTripletsMiner())
        >>> miner(torch.randn(3, 2), torch.tensor([0, 0, 1]))
        (tensor([0, 1]), tensor([1, 0]), tensor([0, 1]), tensor([2, 2]))
    """

    tuple_kind: ClassVar[str] = "pair"

    def __init__(self, triplet_miner: nn.Module) -> None:
        super().__init__()
        self.triplet_miner = triplet_miner

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        triplets = self.triplet_miner(embeddings, labels)
        return pairs_from_triplets(triplets, embeddings.shape[0])
