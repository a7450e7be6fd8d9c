"""Cosine similarities and pair masks: what the metric losses and the miner share.

A miner's output is plain int64 index tensors, as in lossforge and pytorch-metric-learning: pairs
`(a1, p, a2, n)` — positive pairs `(a1[k], p[k])` and negative pairs `(a2[k], n[k])` — or triplets
`(a, p, n)`. The losses here work on `(N, N)` boolean masks, so both kinds (and `None`, every pair of
the batch) go through `pair_masks`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossforge_extras._common import InputError, shape

EXPECTED_INPUTS = "embeddings (N, D) of a floating dtype and integer labels (N,)"


def check_embeddings(name: str, embeddings: Tensor, labels: Tensor) -> None:
    """Raise an `InputError` naming `name` unless `embeddings` is `(N, D)` floating and `labels`
    `(N,)` integer.

    ```pycon
    >>> check_embeddings("info_nce", torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lossforge_extras._common.InputError: info_nce: expected embeddings (N, D) ..., got (4, 2) ... and (3,) torch.int64

    ```
    """
    integer_labels = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    if not (
        embeddings.dim() == 2
        and embeddings.is_floating_point()
        and labels.dim() == 1
        and integer_labels
        and labels.shape[0] == embeddings.shape[0]
    ):
        raise InputError(
            f"{name}: expected {EXPECTED_INPUTS}, got {shape(embeddings)} {embeddings.dtype} and "
            f"{shape(labels)} {labels.dtype}"
        )


def cosine_similarities(embeddings: Tensor) -> Tensor:
    """The `(N, N)` matrix of cosine similarities $S_{ij} = \\cos(x_i, x_j)$.

    ```pycon
    >>> cosine_similarities(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]]))
    tensor([[ 1.0000,  0.7071,  0.0000],
            [ 0.7071,  1.0000, -0.7071],
            [ 0.0000, -0.7071,  1.0000]])

    ```
    """
    normalized = F.normalize(embeddings, dim=1)  # (N, D); a zero row stays zero instead of dividing by 0
    return normalized @ normalized.T  # (N, N)


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Boolean `(N, N)` masks of the positive pairs (same label, `i != j`) and the negative pairs.

    ```pycon
    >>> positive, negative = label_masks(torch.tensor([0, 0, 1]))
    >>> positive.nonzero().tolist(), negative.sum().item()
    ([[0, 1], [1, 0]], 4)

    ```
    """
    same = labels[:, None] == labels[None, :]  # (N, N)
    positive = same & ~torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return positive, ~same


def pair_masks(name: str, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None) -> tuple[Tensor, Tensor]:
    """Positive and negative pair masks `(N, N)`: every pair of the batch for `None`, else the pairs a
    miner chose — `(a1, p, a2, n)`, or the `(a, p)` and `(a, n)` pairs of triplets `(a, p, n)`.

    ```pycon
    >>> pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([1]), torch.tensor([2]))  # (a1, p, a2, n)
    >>> positive, negative = pair_masks("loss", torch.tensor([0, 0, 1]), pairs)
    >>> positive.nonzero().tolist(), negative.nonzero().tolist()
    ([[0, 1]], [[1, 2]])

    ```
    """
    if indices_tuple is None:
        return label_masks(labels)
    if not isinstance(indices_tuple, tuple | list) or len(indices_tuple) not in (3, 4):
        got = f"{len(indices_tuple)} tensors" if isinstance(indices_tuple, tuple | list) else repr(indices_tuple)
        raise InputError(
            f"{name}: expected `indices_tuple` to be pairs (a1, p, a2, n) or triplets (a, p, n) of index "
            f"tensors, or None, got {got}"
        )
    for index in indices_tuple:
        if not isinstance(index, Tensor) or index.dim() != 1 or index.is_floating_point() or index.is_complex():
            got = f"{shape(index)} {index.dtype}" if isinstance(index, Tensor) else type(index).__name__
            raise InputError(f"{name}: expected 1-D integer index tensors in `indices_tuple`, got {got}")
    if len(indices_tuple) == 4:
        anchors, positives, negative_anchors, negatives = indices_tuple
    else:
        anchors, positives, negatives = indices_tuple
        negative_anchors = anchors
    if anchors.shape != positives.shape or negative_anchors.shape != negatives.shape:
        lengths = [index.shape[0] for index in indices_tuple]
        raise InputError(f"{name}: expected index tensors of matching lengths in `indices_tuple`, got {lengths}")
    num = labels.shape[0]
    positive = torch.zeros(num, num, dtype=torch.bool, device=labels.device)
    negative = torch.zeros_like(positive)
    positive[anchors.long(), positives.long()] = True
    negative[negative_anchors.long(), negatives.long()] = True
    return positive, negative
