"""Metric-learning losses: contrastive (pairs) and triplet.

Both are called `loss(embeddings (N, D), labels (N,), indices_tuple=None)`. `indices_tuple` is a
miner's output — pairs `(a1, p, a2, n)` or triplets `(a, p, n)` of int64 indices into the batch;
`None` means every valid pair / triplet of the batch. Besides `"mean"`, `"sum"` and `"none"`,
both accept `reduction="mean_nonzero"`: the mean over the tuples whose loss is non-zero. For triplets
that is exactly pytorch-metric-learning's (PML) default (`AvgNonZeroReducer`). For pairs it is not: PML
reduces the positive and the negative pairs *separately*, each by the mean over its non-zero terms, and
adds the two means — the contrastive loss offers that as `reduction="pos_neg_mean"`. (The two differ
whenever the numbers of active positive and negative pairs differ: with 10 classes, `"mean_nonzero"`
weighs the ~9× more numerous negatives ~9× more.) lossforge's `"mean"` is over *all* tuples
considered, as in the lecture. A batch without a valid tuple gives a loss of 0 that is still
connected to the embeddings (it backpropagates zeros, never NaN).

After each forward a loss module sets `last_num_tuples` and `last_num_active` (0-dim int64 tensors,
detached): how many tuples it considered and how many had non-zero loss. Logged over training, they show
the lecture's point that most triplets become easy.

Differences from PML's defaults, on purpose (each is a constructor argument here):

* PML's distance is the *unsquared* Euclidean distance on L2-*normalised* embeddings; lossforge does not
  normalise (normalise in the model, or use `distance="cosine"`), and its triplet loss uses the
  squared Euclidean distance, as in the lecture and FaceNet.
* PML's contrastive loss is the unsquared hinge $[d - m_{pos}]_+ + [m_{neg} - d]_+$; lossforge's is
  $y\\, d^2 + (1 - y) [m - d]_+^2$ (Hadsell, Chopra & LeCun 2006).
* PML reduces with the mean over non-zero terms (pairs: of positives and of negatives separately, then
  added); lossforge's default `"mean"` averages all tuples (`"mean_nonzero"` / `"pos_neg_mean"`
  give PML's reductions).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import Loss, LossInputError, check_reduction, input_error
from lossforge.mining.distances import check_distance, indexed_distances, pairwise_distance
from lossforge.mining.tuples import (
    EXPECTED_INPUTS,
    all_pair_indices,
    all_triplet_indices,
    describe_bad_inputs,
    label_masks,
    padded_positive_distances,
)

METRIC_REDUCTIONS = ("mean", "sum", "none", "mean_nonzero")
"""The reductions the metric losses accept."""
CONTRASTIVE_REDUCTIONS = (*METRIC_REDUCTIONS, "pos_neg_mean")
"""The contrastive loss's: also PML's pair convention, the mean over non-zero positive-pair terms plus the
mean over non-zero negative-pair terms."""

# (loss value, tuples considered, tuples with non-zero loss)
_Result = tuple[Tensor, Tensor, Tensor]


def _check_inputs(loss_name: str, embeddings: Tensor, labels: Tensor) -> None:
    got = describe_bad_inputs(embeddings, labels)
    if got is not None:
        raise input_error(loss_name, EXPECTED_INPUTS, got)


def _check_indices(loss_name: str, indices_tuple: tuple[Tensor, ...]) -> None:
    if not isinstance(indices_tuple, tuple | list) or len(indices_tuple) not in (3, 4):
        got = f"{len(indices_tuple)} tensors" if isinstance(indices_tuple, tuple | list) else repr(indices_tuple)
        raise LossInputError(
            f"{loss_name}: expected `indices_tuple` to be pairs (a1, p, a2, n) or triplets (a, p, n) of "
            f"index tensors, or None, got {got}"
        )
    bad = [
        _describe(index)
        for index in indices_tuple
        if not isinstance(index, Tensor) or index.dim() != 1 or index.is_floating_point() or index.is_complex()
    ]
    if bad:
        raise LossInputError(f"{loss_name}: expected 1-D integer index tensors in `indices_tuple`, got {bad}")
    lengths = [index.shape[0] for index in indices_tuple]
    if lengths[0] != lengths[1] or lengths[-2] != lengths[-1]:
        raise LossInputError(
            f"{loss_name}: expected index tensors of matching lengths in `indices_tuple`, got lengths {lengths}"
        )


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"{tuple(value.shape)} {value.dtype}"
    return type(value).__name__


def _reduce(terms: Tensor, reduction: str) -> _Result:
    """Reduce per-tuple losses; also count the tuples and the non-zero ones."""
    num_tuples = torch.tensor(terms.numel(), device=terms.device)
    num_active = (terms > 0).sum()
    return _finish(terms, terms.sum(), num_tuples, num_active, reduction)


def _finish(terms: Tensor | None, total: Tensor, num_tuples: Tensor, num_active: Tensor, reduction: str) -> _Result:
    # Dividing by max(count, 1) keeps an empty batch at 0 (total is then an attached 0), never NaN.
    if reduction == "none":
        assert terms is not None
        value = terms
    elif reduction == "sum":
        value = total
    elif reduction == "mean":
        value = total / num_tuples.clamp_min(1)
    else:  # "mean_nonzero"
        value = total / num_active.clamp_min(1)
    return value, num_tuples.detach().long(), num_active.detach().long()


# -- contrastive -----------------------------------------------------------------------------------


def _contrastive(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None,
    margin: float,
    distance: str,
    reduction: str,
) -> _Result:
    if indices_tuple is None and reduction != "none":
        # All pairs straight from the (N, N) matrix: no index tensors at all.
        positive, negative = label_masks(labels)
        distances = pairwise_distance(embeddings, distance=distance)  # (N, N)
        positive_terms = torch.where(positive, distances.pow(2), 0.0)  # (N, N); zero outside the pairs
        negative_terms = torch.where(negative, (margin - distances).clamp_min(0.0).pow(2), 0.0)  # (N, N)
        num_tuples = positive.sum() + negative.sum()
        if reduction == "pos_neg_mean":
            return _pos_neg_mean(positive_terms, negative_terms, num_tuples)
        terms = positive_terms + negative_terms
        num_active = (terms > 0).sum()
        return _finish(None, terms.sum(), num_tuples, num_active, reduction)
    if indices_tuple is None:
        anchor1, positive_index, anchor2, negative_index = all_pair_indices(labels)
    elif len(indices_tuple) == 4:
        anchor1, positive_index, anchor2, negative_index = indices_tuple
    else:  # triplets: each distinct (a, p) and (a, n) pair they contain, once
        anchor, positive_index, negative_index = indices_tuple
        anchor1, positive_index = _distinct_pairs(anchor, positive_index, embeddings.shape[0])
        anchor2, negative_index = _distinct_pairs(anchor, negative_index, embeddings.shape[0])
    positive_distances, negative_distances = indexed_distances(
        embeddings, (anchor1, positive_index), (anchor2, negative_index), distance=distance
    )
    positive_terms = positive_distances.pow(2)  # (P,)
    negative_terms = (margin - negative_distances).clamp_min(0.0).pow(2)  # (Q,)
    if reduction == "pos_neg_mean":
        num_tuples = torch.tensor(positive_terms.numel() + negative_terms.numel(), device=embeddings.device)
        return _pos_neg_mean(positive_terms, negative_terms, num_tuples)
    return _reduce(torch.cat([positive_terms, negative_terms]), reduction)


def _pos_neg_mean(positive_terms: Tensor, negative_terms: Tensor, num_tuples: Tensor) -> _Result:
    """PML's pair reduction: the mean over non-zero positive terms plus the mean over non-zero negative ones."""
    positive_active, negative_active = (positive_terms > 0).sum(), (negative_terms > 0).sum()
    value = positive_terms.sum() / positive_active.clamp_min(1) + negative_terms.sum() / negative_active.clamp_min(1)
    return value, num_tuples.detach().long(), (positive_active + negative_active).detach().long()


def _distinct_pairs(first: Tensor, second: Tensor, num: int) -> tuple[Tensor, Tensor]:
    codes = torch.unique(first.long() * num + second.long())  # sorted, so pairs come out in (i, j) order
    return codes // num, codes % num


def contrastive_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    margin: float = 1.0,
    distance: str = "euclidean",
    reduction: str = "mean",
) -> Tensor:
    """Contrastive loss over pairs: pull positives together, push negatives beyond the margin.

    $$
    \\ell(i, j) = y_{ij}\\, d_{ij}^2 + (1 - y_{ij}) \\max(m - d_{ij}, 0)^2
    $$

    with $y_{ij} = 1$ for a positive pair (same label) and 0 for a negative pair, and $d$ the
    chosen distance (Euclidean by default, as in Hadsell et al. 2006).

    Args:
        embeddings: the batch's embeddings.
        labels: integer class labels.
        indices_tuple: pairs `(a1, p, a2, n)` from a pair miner; triplets `(a, p, n)` are converted to
            their distinct (a, p) and (a, n) pairs (each counted once, however many triplets share it);
            `None` uses every ordered pair of the batch (so each unordered pair counts twice, as in PML).
        margin: $m \\ge 0$.
        distance: `"euclidean"`, `"squared_euclidean"` or `"cosine"`.
        reduction: `"mean"` (over all pairs), `"sum"`, `"mean_nonzero"` (over the pairs with non-zero
            loss), `"pos_neg_mean"` (PML's convention: the mean over the positive pairs with non-zero
            loss plus the mean over the negative pairs with non-zero loss) or `"none"`: the per-pair
            losses, positive pairs first, then negative pairs, each in the order given (`None`: sorted
            by (i, j); from triplets: sorted distinct pairs).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: scalar, or $(P + Q,)$ for `"none"` with P positive and Q negative pairs

    Examples:
        >>> embeddings = torch.tensor([[0.0], [0.5], [1.0]])
        >>> contrastive_loss(embeddings, torch.tensor([0, 0, 1]), reduction="none")
        tensor([0.2500, 0.2500, 0.0000, 0.2500, 0.0000, 0.2500])
        >>> contrastive_loss(embeddings, torch.tensor([0, 0, 1]), reduction="pos_neg_mean")  # 0.25 + 0.25
        tensor(0.5000)
    """
    _check_inputs("contrastive", embeddings, labels)
    _check_options("contrastive", margin, distance, reduction, CONTRASTIVE_REDUCTIONS)
    if indices_tuple is not None:
        _check_indices("contrastive", indices_tuple)
    return _contrastive(embeddings, labels, indices_tuple, margin, distance, reduction)[0]


# -- triplet ---------------------------------------------------------------------------------------


def _all_triplets_total(
    embeddings: Tensor, labels: Tensor, margin: float, distance: str
) -> tuple[Tensor, Tensor, Tensor]:
    """Sum of the hinge over ALL valid triplets in O(N²) memory and O(N² log N) time.

    For an anchor a, triplet (a, p, n) is active iff $d_{an} < d_{ap} + m$. Let
    $c_{ap}$ = #negatives active with positive p (sort the anchor's negative distances once and
    `searchsorted` each $d_{ap} + m$) and $w_{an}$ = #positives active with negative n
    (the active negatives of p are a prefix of that sorted row, so $w$ is a suffix sum of the
    histogram of $c$). Then

    $$
    \\sum_{p, n} [m + d_{ap} - d_{an}]_+ = \\sum_p c_{ap} (m + d_{ap}) - \\sum_n w_{an} d_{an}
    $$

    The counts are piecewise constant in the embeddings, so this is a weighted sum of the (N, N) distance
    matrix with integer weights, and autograd only sees the matrix: no triplet is ever built.
    """
    num = embeddings.shape[0]
    distances = pairwise_distance(embeddings, distance=distance)  # (N, N)
    positive, negative = label_masks(labels)
    weights = torch.zeros_like(distances)  # (N, N): c on positive pairs, -w on negative pairs
    num_active = torch.zeros((), dtype=torch.long, device=distances.device)  # exact beyond 2**24
    with torch.no_grad():
        rows_per_chunk = max(1, (1 << 22) // max(num, 1))
        for start in range(0, num, rows_per_chunk):
            rows = slice(start, start + rows_per_chunk)
            chunk = distances[rows]  # (C, N)
            sorted_negatives, order = chunk.masked_fill(~negative[rows], torch.inf).sort(dim=1)  # (C, N)
            anchor, positive_index, slot, padded = padded_positive_distances(chunk, positive[rows])
            # c_ap: how many of a's negatives (a prefix of the sorted row) have d_an < d_ap + m
            active_negatives = torch.searchsorted(sorted_negatives, padded + margin)[anchor, slot]  # (K,)
            # w_an for the negative at sorted position j is #{p: c_ap > j}: a suffix sum of the
            # histogram of c over a's positives (and so sum(w) == sum(c) exactly).
            histogram = torch.zeros(chunk.shape[0], num + 1, device=chunk.device, dtype=torch.long)
            histogram.index_put_((anchor, active_negatives), torch.ones_like(anchor), accumulate=True)
            above = histogram.flip(1).cumsum(dim=1).flip(1)[:, 1:]  # (C, N): #{p: c_ap > j}
            # Positions past a's last negative hold non-negatives, where #{p: c_ap > j} is 0.
            active_positives = torch.zeros_like(above).scatter_(1, order, above)  # (C, N), original order
            chunk_weights = -active_positives.to(weights.dtype)
            chunk_weights[anchor, positive_index] = active_negatives.to(weights.dtype)
            weights[rows] = chunk_weights
            num_active += active_negatives.sum()
        num_tuples = (positive.sum(dim=1) * negative.sum(dim=1)).sum()
    total = (weights * distances).sum() + margin * num_active.to(distances.dtype)
    return total, num_tuples, num_active


def _triplet(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None,
    margin: float,
    distance: str,
    reduction: str,
) -> _Result:
    if indices_tuple is None and reduction != "none":
        total, num_tuples, num_active = _all_triplets_total(embeddings, labels, margin, distance)
        return _finish(None, total, num_tuples, num_active, reduction)
    if indices_tuple is None:
        indices_tuple = all_triplet_indices(labels)  # "none" has one value per triplet: O(N³) memory
    if len(indices_tuple) == 4:
        raise LossInputError(
            "triplet: expected triplets (a, p, n) in `indices_tuple`, got 4 tensors, pairs (a1, p, a2, n) "
            "from a pair miner; use a miner with tuple_kind 'triplet' (e.g. 'semihard_triplets')"
        )
    anchor, positive_index, negative_index = indices_tuple
    positive_distances, negative_distances = indexed_distances(
        embeddings, (anchor, positive_index), (anchor, negative_index), distance=distance
    )
    terms = (margin + positive_distances - negative_distances).clamp_min(0.0)  # (T,)
    return _reduce(terms, reduction)


def triplet_loss(
    embeddings: Tensor,
    labels: Tensor,
    indices_tuple: tuple[Tensor, ...] | None = None,
    *,
    margin: float = 0.2,
    distance: str = "squared_euclidean",
    reduction: str = "mean",
) -> Tensor:
    """Triplet margin loss: each anchor closer to its positive than to its negative by a margin.

    $$
    \\ell(a, p, n) = \\max(m + d(a, p) - d(a, n), 0)
    $$

    with $d$ the squared Euclidean distance by default (the lecture, FaceNet). A triplet is valid
    when `labels[a] == labels[p]`, `a != p` and `labels[n] != labels[a]`.

    With `indices_tuple=None` every valid triplet counts, but `"mean"`, `"sum"` and
    `"mean_nonzero"` are computed from the (N, N) distance matrix in O(N²) memory and O(N² log N) time,
    without building the O(N³) triplets (exact: see `_all_triplets_total`); `"none"` has to return one
    value per triplet and does materialise them.

    Args:
        embeddings: the batch's embeddings.
        labels: integer class labels.
        indices_tuple: triplets `(a, p, n)` from a triplet miner, or `None` for all valid triplets.
            Pairs `(a1, p, a2, n)` are refused with a `LossInputError` (there is no unique way to make
            triplets of them).
        margin: $m \\ge 0$.
        distance: `"squared_euclidean"`, `"euclidean"` (PML's choice) or `"cosine"`.
        reduction: `"mean"` (over all triplets), `"sum"`, `"mean_nonzero"` (over the triplets with
            non-zero loss, PML's default) or `"none"`: per-triplet losses, in the order given
            (`None`: sorted by (a, p, n)).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$
        - Output: scalar, or $(T,)$ for `"none"`

    Examples:
        >>> embeddings = torch.tensor([[0.0], [0.5], [1.0]])
        >>> triplet_loss(embeddings, torch.tensor([0, 0, 1]), margin=0.5, reduction="none")
        tensor([0.0000, 0.5000])
        >>> triplet_loss(embeddings, torch.tensor([0, 0, 1]), margin=0.5)
        tensor(0.2500)
    """
    _check_inputs("triplet", embeddings, labels)
    _check_options("triplet", margin, distance, reduction)
    if indices_tuple is not None:
        _check_indices("triplet", indices_tuple)
    return _triplet(embeddings, labels, indices_tuple, margin, distance, reduction)[0]


def _check_options(
    loss_name: str, margin: float, distance: str, reduction: str, reductions: tuple[str, ...] = METRIC_REDUCTIONS
) -> None:
    if not margin >= 0:
        raise ValueError(f"{loss_name}: expected `margin` >= 0, got {margin}")
    check_distance(distance, owner=loss_name)
    check_reduction(loss_name, reduction, reductions)


# -- modules ---------------------------------------------------------------------------------------


class _MetricLoss(Loss):
    """Shared plumbing of the metric losses that score tuples (here and in `losses/pairwise.py`): the
    metric task, pair tuples by default, input checks and the tuple counters."""

    tasks: ClassVar[tuple[Task, ...]] = (Task.METRIC,)
    tuple_kind: ClassVar[str] = "pair"

    def __init__(self, *, reduction: str) -> None:
        super().__init__()
        self.reduction = reduction  # type: ignore[assignment]  # metric losses also take "mean_nonzero"
        self.last_num_tuples = torch.zeros((), dtype=torch.long)
        self.last_num_active = torch.zeros((), dtype=torch.long)

    def _check(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> None:
        _check_inputs(self.name, embeddings, labels)
        if indices_tuple is not None:
            _check_indices(self.name, indices_tuple)

    def _record(self, result: _Result) -> Tensor:
        value, self.last_num_tuples, self.last_num_active = result
        return value


class ContrastiveLoss(_MetricLoss):
    """Contrastive loss over positive and negative pairs; the math is `contrastive_loss`.

    Args:
        margin: negatives closer than this are pushed apart ($m \\ge 0$).
        distance: `"euclidean"`, `"squared_euclidean"` or `"cosine"`.
        reduction: `"mean"`, `"sum"`, `"mean_nonzero"`, `"pos_neg_mean"` (PML's pair convention) or
            `"none"` (per pair: positives, then negatives).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, `indices_tuple`: pairs or triplets or None
        - Output: scalar, or per pair for `"none"`

    Examples:
        >>> loss = ContrastiveLoss(margin=1.0)
        >>> embeddings = torch.tensor([[0.0], [0.5], [1.0]], requires_grad=True)
        >>> loss(embeddings, torch.tensor([0, 0, 1]))
        tensor(0.1667, grad_fn=<DivBackward0>)
        >>> int(loss.last_num_tuples), int(loss.last_num_active)
        (6, 4)
    """

    name = "contrastive"
    tuple_kind = "pair"
    # A decade either side of Hadsell et al.'s 1 (the embeddings are not normalised, so they set the scale).
    # `distance` is not tuned: it changes the margin's units and how retrieval is evaluated.
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, margin: float = 1.0, distance: str = "euclidean", reduction: str = "mean") -> None:
        _check_options(self.name, margin, distance, reduction, CONTRASTIVE_REDUCTIONS)
        super().__init__(reduction=reduction)
        self.margin, self.distance = float(margin), distance

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        self._check(embeddings, labels, indices_tuple)
        return self._record(_contrastive(embeddings, labels, indices_tuple, self.margin, self.distance, self.reduction))

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}, reduction={self.reduction!r}"


class TripletLoss(_MetricLoss):
    """Triplet margin loss $\\max(m + d(a, p) - d(a, n), 0)$; the math is `triplet_loss`.

    Args:
        margin: $m \\ge 0$.
        distance: `"squared_euclidean"` (default, the lecture's), `"euclidean"` or `"cosine"`.
        reduction: `"mean"`, `"sum"`, `"mean_nonzero"` or `"none"` (per triplet).

    Shape:
        - embeddings: $(N, D)$, labels: $(N,)$, `indices_tuple`: triplets or None
        - Output: scalar, or per triplet for `"none"`

    Examples:
        >>> loss = TripletLoss(margin=0.5)
        >>> embeddings = torch.tensor([[0.0], [0.5], [1.0]], requires_grad=True)
        >>> loss(embeddings, torch.tensor([0, 0, 1]))
        tensor(0.2500, grad_fn=<DivBackward0>)
        >>> int(loss.last_num_tuples), int(loss.last_num_active)
        (2, 1)
    """

    name = "triplet"
    tuple_kind = "triplet"
    # A decade either side of FaceNet's 0.2 on squared distances; `distance` is not tuned (see contrastive).
    search_space: ClassVar[dict[str, Prior]] = {"margin": FloatRange(0.02, 2.0, log=True)}

    def __init__(self, *, margin: float = 0.2, distance: str = "squared_euclidean", reduction: str = "mean") -> None:
        _check_options(self.name, margin, distance, reduction, METRIC_REDUCTIONS)
        super().__init__(reduction=reduction)
        self.margin, self.distance = float(margin), distance

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        self._check(embeddings, labels, indices_tuple)
        return self._record(_triplet(embeddings, labels, indices_tuple, self.margin, self.distance, self.reduction))

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}, reduction={self.reduction!r}"
