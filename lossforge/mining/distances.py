"""Distances between embeddings, shared by the metric losses and the miners.

Three distances, selected by name:

* `"euclidean"` — $\\lVert x - y \\rVert_2$
* `"squared_euclidean"` — $\\lVert x - y \\rVert_2^2$
* `"cosine"` — $1 - \\cos(x, y)$, computed on L2-normalised embeddings (values in `[0, 2]`)

`pairwise_distance` returns the (N, M) matrix between two sets of embeddings (the miners and the
all-tuples losses use it); `paired_distance` the (K,) distances between row `k` of one set and row
`k` of the other (note: `torch.nn.functional.pairwise_distance` is the row-wise one; the names here
follow scikit-learn's `pairwise_distances` / `paired_distances`); `indexed_distances` the distances
of index pairs into one batch, by whichever of the two is cheaper.

Every distance has finite gradients at zero distance (identical embeddings): the square root of a sum of
squares has an infinite derivative at 0, so the Euclidean distance is
$\\sqrt{\\max(\\lVert x - y \\rVert^2, \\epsilon)}$ with $\\epsilon = 10^{-12}$ (the smallest
normal number for `float16`). Distances below $\\sqrt{\\epsilon} = 10^{-6}$ therefore read as
$10^{-6}$ and have zero gradient.

Unlike pytorch-metric-learning's `LpDistance`, no distance here normalises the embeddings (only
`"cosine"` does, by definition): normalise in the model if you want PML's default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossforge.contract import did_you_mean

DISTANCES = ("euclidean", "squared_euclidean", "cosine")
"""The distance names every metric loss and miner accepts."""

_SQRT_EPS = 1e-12


def check_distance(distance: str, owner: str = "distance") -> str:
    """Return `distance` if it is a known distance name, else raise a `ValueError` that lists them.

    `owner` (a loss or miner name) starts the message, so a typo in a config names the component.

    ```pycon
    >>> check_distance("cosine")
    'cosine'
    >>> check_distance("euclidian", owner="triplet")
    Traceback (most recent call last):
    ...
    ValueError: triplet: unknown `distance` 'euclidian'. Did you mean 'euclidean'? Available distances: euclidean, squared_euclidean, cosine

    ```
    """  # noqa: E501
    if distance in DISTANCES:
        return distance
    hint = did_you_mean(str(distance), DISTANCES, n=1)
    raise ValueError(f"{owner}: unknown `distance` {distance!r}.{hint} Available distances: {', '.join(DISTANCES)}")


def _safe_sqrt(squared: Tensor) -> Tensor:
    # Clamping *inside* the sqrt keeps the derivative 1 / (2 sqrt(.)) bounded; float16 cannot hold
    # 1e-12, so its smallest normal number is used there instead.
    eps = max(_SQRT_EPS, torch.finfo(squared.dtype).tiny)
    return squared.clamp_min(eps).sqrt()


def squared_euclidean(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Matrix of squared Euclidean distances between the rows of `x` and the rows of `y`.

    $$
    D_{ij} = \\lVert x_i - y_j \\rVert_2^2 = \\lVert x_i \\rVert^2 + \\lVert y_j \\rVert^2
    - 2 \\langle x_i, y_j \\rangle
    $$

    The expansion costs O(N·M) memory instead of the O(N·M·D) of explicit differences (the same choice
    `torch.cdist` makes for large inputs). Both sets are first shifted by the mean of `x`, which leaves
    the distances unchanged but shrinks the norms and with them the cancellation error; values are
    clamped at 0, and with `y=None` the diagonal is exactly 0.

    Args:
        x: embeddings.
        y: a second set of embeddings; `None` means `x` (distances within one batch).

    Shape:
        - x: $(N, D)$, y: $(M, D)$
        - Output: $(N, M)$ (`(N, N)` when `y` is `None`)

    Examples:
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> squared_euclidean(x)
        tensor([[ 0., 25.],
                [25.,  0.]])
    """
    center = x.detach().mean(dim=0, keepdim=True) if x.shape[0] > 0 else 0.0  # (1, D)
    x_centered = x - center  # (N, D)
    y_centered = x_centered if y is None else y - center  # (M, D)
    x_norms = x_centered.pow(2).sum(dim=1)  # (N,)
    y_norms = x_norms if y is None else y_centered.pow(2).sum(dim=1)  # (M,)
    squared = torch.addmm(x_norms[:, None], x_centered, y_centered.T, alpha=-2.0)  # (N, M)
    squared = (squared + y_norms[None, :]).clamp_min(0.0)
    if y is None:
        # clamp_min's backward reads its input, not this output, so zeroing it in place is safe.
        squared.diagonal().zero_()
    return squared


def euclidean(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Matrix of Euclidean distances, with finite gradients at zero distance.

    $$
    D_{ij} = \\sqrt{\\max(\\lVert x_i - y_j \\rVert_2^2, \\epsilon)}, \\quad \\epsilon = 10^{-12}
    $$

    Args:
        x: embeddings.
        y: a second set of embeddings; `None` means `x`.

    Shape:
        - x: $(N, D)$, y: $(M, D)$
        - Output: $(N, M)$

    Examples:
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
        >>> distances = euclidean(x)
        >>> distances[0, 1]
        tensor(5., grad_fn=<SelectBackward0>)
        >>> distances.sum().backward()  # the zero diagonal does not produce NaN
        >>> bool(torch.isfinite(x.grad).all())
        True
    """
    return _safe_sqrt(squared_euclidean(x, y))


def cosine(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Matrix of cosine distances $1 - \\cos$, computed on L2-normalised embeddings.

    $$
    D_{ij} = 1 - \\frac{\\langle x_i, y_j \\rangle}{\\lVert x_i \\rVert \\, \\lVert y_j \\rVert}
    $$

    A zero vector normalises to zero (`F.normalize`), so its distance to anything is 1. Values are
    clamped to `[0, 2]`; with `y=None` the diagonal is exactly 0.

    Args:
        x: embeddings.
        y: a second set of embeddings; `None` means `x`.

    Shape:
        - x: $(N, D)$, y: $(M, D)$
        - Output: $(N, M)$

    Examples:
        >>> cosine(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]))
        tensor([[0., 1., 2.],
                [1., 0., 1.],
                [2., 1., 0.]])
    """
    x_unit = F.normalize(x, dim=1)  # (N, D)
    y_unit = x_unit if y is None else F.normalize(y, dim=1)  # (M, D)
    distances = (1.0 - x_unit @ y_unit.T).clamp(0.0, 2.0)  # (N, M)
    if y is None:
        distances.diagonal().zero_()  # clamp's backward reads its input, so this is autograd-safe
    return distances


_MATRIX = {"euclidean": euclidean, "squared_euclidean": squared_euclidean, "cosine": cosine}


def pairwise_distance(x: Tensor, y: Tensor | None = None, *, distance: str = "euclidean") -> Tensor:
    """Matrix of distances between the rows of `x` and `y`, the distance chosen by name.

    Args:
        x: embeddings.
        y: a second set of embeddings; `None` means `x`.
        distance: one of `"euclidean"`, `"squared_euclidean"`, `"cosine"`.

    Shape:
        - x: $(N, D)$, y: $(M, D)$
        - Output: $(N, M)$

    Examples:
        >>> pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), distance="squared_euclidean")
        tensor([[ 0., 25.],
                [25.,  0.]])
    """
    return _MATRIX[check_distance(distance)](x, y)


def paired_distance(x: Tensor, y: Tensor, *, distance: str = "euclidean") -> Tensor:
    """Distance between row `k` of `x` and row `k` of `y`, for every `k`.

    Computed from explicit differences (exact, O(K·D) memory), with the same finite-gradient square root
    and cosine normalisation as `pairwise_distance`, so it agrees with the matrix entries up to rounding.

    Args:
        x: embeddings.
        y: embeddings paired row by row with `x`.
        distance: one of `"euclidean"`, `"squared_euclidean"`, `"cosine"`.

    Shape:
        - x, y: $(K, D)$
        - Output: $(K,)$

    Examples:
        >>> paired_distance(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[3.0, 4.0], [1.0, 1.0]]))
        tensor([5.0000e+00, 1.0000e-06])
    """
    check_distance(distance)
    if distance == "cosine":
        return (1.0 - (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(dim=-1)).clamp(0.0, 2.0)
    squared = (x - y).pow(2).sum(dim=-1)  # (K,)
    return squared if distance == "squared_euclidean" else _safe_sqrt(squared)


def indexed_distances(
    embeddings: Tensor, *index_pairs: tuple[Tensor, Tensor], distance: str = "euclidean"
) -> tuple[Tensor, ...]:
    """Distances $d(e_{i_k}, e_{j_k})$ for index pairs into one batch of embeddings.

    Gathering rows costs O(K·D) memory for K pairs, the distance matrix O(N²); a miner may return far
    more pairs than N²/D (semi-hard mining gives one triplet per positive pair), so the matrix is built
    once and indexed when it is the smaller of the two, and rows are gathered otherwise. Rows are also
    gathered when there are at most two pairs per sample (K ≤ 2N, as batch-hard mining's (a, p) and
    (a, n)): that holds no more than twice the embeddings themselves, and skips the matrix product and its
    backward, which dominate a small batch's step. An index tensor passed in several pairs (the anchors of
    triplets) is gathered once.

    Args:
        embeddings: the batch.
        *index_pairs: `(first, second)` int64 index tensors of equal length.
        distance: one of `"euclidean"`, `"squared_euclidean"`, `"cosine"`.

    Shape:
        - embeddings: $(N, D)$; each index tensor $(K_i,)$
        - Output: one $(K_i,)$ tensor per index pair

    Examples:
        >>> embeddings = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
        >>> indexed_distances(embeddings, (torch.tensor([0, 0]), torch.tensor([1, 2])))
        (tensor([ 5., 10.]),)
    """
    check_distance(distance)
    num_rows, dim = embeddings.shape
    num_pairs = sum(first.numel() for first, _ in index_pairs)
    if num_pairs * dim <= num_rows * num_rows or num_pairs <= 2 * num_rows:
        first = index_pairs[0][0] if index_pairs else None
        if len(index_pairs) > 1 and all(
            other is first and second.shape == index_pairs[0][1].shape for other, second in index_pairs
        ):
            # Triplets' (a, p) and (a, n): the anchors gathered once, both sides in one broadcast pass.
            seconds = torch.stack([second for _, second in index_pairs])  # (P, K)
            together = paired_distance(embeddings[first], embeddings[seconds], distance=distance)  # (P, K)
            return tuple(together.unbind(0))
        return tuple(
            paired_distance(embeddings[first], embeddings[second], distance=distance) for first, second in index_pairs
        )
    matrix = pairwise_distance(embeddings, distance=distance)  # (N, N)
    return tuple(matrix[first, second] for first, second in index_pairs)
