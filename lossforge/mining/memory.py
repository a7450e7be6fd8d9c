"""Cross-batch memory (XBM, Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020).

A batch of 128 over many classes holds few positives and few hard negatives. The embeddings of recent
batches change slowly once training has warmed up ("slow drift"), so XBM keeps the last `size` of them,
detached, in a ring buffer and mines each batch's anchors against the batch *and* the memory:

$$
\\mathcal{L} = \\ell\\big(\\,[E_{\\text{batch}};\\ \\operatorname{sg}(E_{\\text{memory}})],\\
[y_{\\text{batch}};\\ y_{\\text{memory}}],\\ T\\big), \\qquad
T \\subseteq \\{\\text{tuples whose anchor is in the batch}\\}
$$

where $\\ell$ is any pair or triplet loss of the registry and $T$ the index tuples (the
contract of [lossforge.mining.tuples][]) of the miner run on the concatenation, or every pair /
triplet when there is no miner; $\\operatorname{sg}$ stops the gradient, so only the batch's
embeddings are trained. Then the batch is enqueued, overwriting the oldest entries.

The miner contract has no separate "reference" set (PML's miners take one), so the miner sees the whole
concatenation and the tuples anchored in the memory are dropped afterwards: correct for every miner of the
registry, at the price of mining `(B + M)²` distances instead of `B × (B + M)`.

**Checkpoints.** The buffers (embeddings, labels) and the fill state are part of the module's
`state_dict`, so a checkpoint holds the memory and a resumed run continues with the memory it had
(`size × D` floats: 256 KiB for 1024 × 64).

**DDP.** The loss of a training step sees the global batch
([lossforge.distributed.global_batch][lossforge.distributed.collectives.global_batch]), so every process enqueues the
same gathered embeddings and holds the same memory: the memory is the global one, not one per process.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lossforge.contract import loss_traits

MEMORIES = ("xbm",)
"""The options of the `memory` config group (`conf/memory/`)."""


def anchored_tuples(indices: tuple[Tensor, ...], num_anchors: int) -> tuple[Tensor, ...]:
    """The tuples of `indices` whose anchor is one of the first `num_anchors` samples, without a
    positive pair of a sample with itself.

    Pairs `(a1, p, a2, n)` are filtered as two lists (positives by `a1`, negatives by `a2`);
    triplets `(a, p, n)` by `a`.

    Examples:
        >>> pairs = (torch.tensor([0, 2, 1]), torch.tensor([2, 0, 1]), torch.tensor([3, 1]), torch.tensor([1, 3]))
        >>> anchored_tuples(pairs, 2)  # anchors 0 and 1 are the batch; (1, 1) pairs a sample with itself
        (tensor([0]), tensor([2]), tensor([1]), tensor([3]))
    """
    if len(indices) == 4:
        first, positive, second, negative = indices
        keep_positive = (first < num_anchors) & (first != positive)
        keep_negative = second < num_anchors
        return first[keep_positive], positive[keep_positive], second[keep_negative], negative[keep_negative]
    if len(indices) == 3:
        anchor, positive, negative = indices
        keep = (anchor < num_anchors) & (anchor != positive)
        return anchor[keep], positive[keep], negative[keep]
    raise ValueError(f"expected pairs (a1, p, a2, n) or triplets (a, p, n), got {len(indices)} index tensors")


def _anchored_masks(labels: Tensor, num_anchors: int) -> tuple[Tensor, Tensor]:
    """(B, N) masks of the positive pairs (same label, not the anchor itself) and negative pairs."""
    same = labels[:num_anchors, None] == labels[None, :]  # (B, N)
    positive = same.clone()
    positive[:, :num_anchors].fill_diagonal_(False)
    return positive, ~same


def anchored_pair_indices(labels: Tensor, num_anchors: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every positive and negative pair `(a1, p, a2, n)` whose anchor is among the first `num_anchors`.

    Examples:
        >>> anchored_pair_indices(torch.tensor([0, 1, 0, 1]), 2)
        (tensor([0, 1]), tensor([2, 3]), tensor([0, 0, 1, 1]), tensor([1, 3, 0, 2]))
    """
    positive, negative = _anchored_masks(labels, num_anchors)
    anchors, positives = torch.nonzero(positive, as_tuple=True)
    negative_anchors, negatives = torch.nonzero(negative, as_tuple=True)
    return anchors, positives, negative_anchors, negatives


def anchored_triplet_indices(
    labels: Tensor, num_anchors: int, max_triplets: int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Every valid triplet `(a, p, n)` with `a` among the first `num_anchors`; at most `max_triplets`.

    The anchors × all-samples version of [lossforge.mining.tuples.all_triplet_indices][]: triplets
    are numbered in `(a, p, n)` order without being built (positive pair `k` of anchor `a` owns
    `#negatives(a)` consecutive numbers) and only the numbers kept are decoded, so memory is
    O(B·N + max_triplets). Over the cap, `max_triplets` numbers are drawn uniformly with replacement
    and the distinct ones kept (a uniform sample of slightly fewer triplets), from torch's global generator.

    Shape:
        - labels: $(N,)$, the batch's first
        - Output: three $(T,)$ int64 tensors, sorted

    Examples:
        >>> anchored_triplet_indices(torch.tensor([0, 1, 0, 1]), 1)
        (tensor([0, 0]), tensor([2, 2]), tensor([1, 3]))
    """
    positive, negative = _anchored_masks(labels, num_anchors)
    pair_anchor, pair_positive = torch.nonzero(positive, as_tuple=True)  # (K,), sorted by anchor
    negatives_of = torch.nonzero(negative, as_tuple=True)[1]  # every anchor's negatives, row by row
    negative_count = negative.sum(dim=1)  # (B,)
    negative_start = torch.cumsum(negative_count, dim=0) - negative_count  # (B,) offsets into negatives_of
    per_pair = negative_count[pair_anchor]  # (K,)
    block_end = torch.cumsum(per_pair, dim=0)  # (K,)
    total = int(block_end[-1]) if block_end.numel() else 0
    if max_triplets is None or total <= max_triplets:
        numbers = torch.arange(total, device=labels.device)
    else:  # torch.unique sorts
        numbers = torch.unique(torch.randint(total, (max_triplets,), device=labels.device))
    pair = torch.searchsorted(block_end, numbers, right=True)  # (T,) the positive pair owning each number
    offset = numbers - (block_end[pair] - per_pair[pair])  # (T,) which of the anchor's negatives
    anchor = pair_anchor[pair]
    return anchor, pair_positive[pair], negatives_of[negative_start[anchor] + offset]


def memory_tuples(
    miner: Any,
    embeddings: Tensor,
    labels: Tensor,
    num_anchors: int,
    *,
    tuple_kind: str,
    max_triplets: int | None = None,
) -> tuple[Tensor, ...]:
    """The index tuples of an XBM step: anchored in the batch (the first `num_anchors` rows), with
    positives and negatives anywhere in batch ∪ memory.

    With a miner: its tuples on the whole concatenation, those anchored in the memory dropped
    ([anchored_tuples][lossforge.mining.memory.anchored_tuples]). Without one: every pair, or every triplet up to
    `max_triplets`.

    Examples:
        >>> memory_tuples(None, torch.zeros(3, 2), torch.tensor([0, 1, 0]), 1, tuple_kind="pair")
        (tensor([0]), tensor([2]), tensor([0]), tensor([1]))
    """
    if miner is not None:
        return anchored_tuples(tuple(miner(embeddings, labels)), num_anchors)
    if tuple_kind == "pair":
        return anchored_pair_indices(labels, num_anchors)
    if tuple_kind == "triplet":
        return anchored_triplet_indices(labels, num_anchors, max_triplets)
    raise ValueError(f"cross-batch memory needs a loss of pairs or triplets, got tuple_kind={tuple_kind!r}")


def cross_batch_loss(
    loss: Any,
    miner: Any,
    embeddings: Tensor,
    labels: Tensor,
    memory_embeddings: Tensor,
    memory_labels: Tensor,
    *,
    max_triplets: int | None = None,
    tuple_kind: str | None = None,
) -> Tensor:
    """`loss` of the batch's anchors mined against the batch and the (detached) memory; see the module.
    `tuple_kind`: the loss's (`"pair"` or `"triplet"`), as the run read it when it was built; read from
    `loss` when not given.

    Args:
        loss: a pair or triplet loss (`tuple_kind` set), called `loss(embeddings, labels, indices)`.
        miner: a miner of the loss's tuple kind, or `None` for every pair / triplet.
        embeddings: the batch's embeddings; the only tensor the result backpropagates into.
        labels: the batch's class labels.
        memory_embeddings: embeddings of earlier batches (detached here).
        memory_labels: their labels.
        max_triplets: without a miner, a triplet loss sees at most this many triplets.

    Shape:
        - embeddings: $(B, D)$, labels: $(B,)$
        - memory_embeddings: $(M, D)$, memory_labels: $(M,)$; $M = 0$ is the plain loss
        - Output: what `loss` returns for its reduction

    Examples:
        >>> from lossforge.losses.metric import ContrastiveLoss
        >>> batch, labels = torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1])
        >>> memory, memory_labels = torch.tensor([[0.0, 0.5]]), torch.tensor([0])
        >>> # positive (0, m): 0.5² = 0.25; negatives (0, 1), (1, 0): [1 - 1]² = 0; (1, m): [1 - √1.25]² = 0
        >>> cross_batch_loss(ContrastiveLoss(margin=1.0), None, batch, labels, memory, memory_labels)
        tensor(0.0625)
    """
    tuple_kind = tuple_kind or loss_traits(loss).tuple_kind
    if tuple_kind is None:
        raise ValueError(
            f"cross-batch memory passes index tuples to the loss, but {type(loss).__name__} takes no pairs or "
            "triplets (tuple_kind=None)"
        )
    num_anchors = len(labels)
    all_embeddings = torch.cat([embeddings, memory_embeddings.detach().to(embeddings.dtype)])  # (B + M, D)
    all_labels = torch.cat([labels, memory_labels.to(device=labels.device, dtype=labels.dtype)])  # (B + M,)
    indices = memory_tuples(
        miner, all_embeddings, all_labels, num_anchors, tuple_kind=tuple_kind, max_triplets=max_triplets
    )
    return loss(all_embeddings, all_labels, indices)


class CrossBatchMemory(nn.Module):
    """A ring buffer of the last `size` training embeddings and labels, and the XBM loss that mines
    against it ([cross_batch_loss][lossforge.mining.memory.cross_batch_loss]).

    `loss(...)` computes the loss of a batch against what the memory holds, then enqueues the batch
    (detached); for its first `start_after_steps` calls the memory is filled but not yet used (XBM's
    warm-up: the embeddings of an untrained model drift too fast to be worth remembering).

    Args:
        size: how many embeddings the memory holds.
        embedding_dim: the width $D$ of an embedding.
        start_after_steps: training steps that use the batch alone.
        max_triplets: without a miner, a triplet loss sees at most this many triplets per step.
        tuple_kind: the loss's tuple kind, as the run read it when it built the loss (`None`: read from
            the loss at each step).

    Examples:
        >>> memory = CrossBatchMemory(size=3, embedding_dim=1)
        >>> memory.enqueue(torch.tensor([[1.0], [2.0]]), torch.tensor([0, 1]))
        >>> memory.enqueue(torch.tensor([[3.0], [4.0]]), torch.tensor([2, 3]))
        >>> memory.contents()  # oldest first; 1.0 was overwritten
        (tensor([[2.],
                [3.],
                [4.]]), tensor([1, 2, 3]))
    """

    embeddings: Tensor
    labels: Tensor

    def __init__(
        self,
        *,
        size: int,
        embedding_dim: int,
        start_after_steps: int = 0,
        max_triplets: int | None = 100_000,
        tuple_kind: str | None = None,
    ) -> None:
        super().__init__()
        for name, value, least in (("size", size, 1), ("embedding_dim", embedding_dim, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"memory=xbm: expected `{name}` >= {least}, got {value!r}")
        if isinstance(start_after_steps, bool) or not isinstance(start_after_steps, int) or start_after_steps < 0:
            raise ValueError(f"memory=xbm: expected `start_after_steps` >= 0, got {start_after_steps!r}")
        if max_triplets is not None and not (isinstance(max_triplets, int) and max_triplets >= 1):
            raise ValueError(f"memory=xbm: expected `max_triplets` >= 1 or null, got {max_triplets!r}")
        self.size, self.start_after_steps, self.max_triplets = size, start_after_steps, max_triplets
        self.tuple_kind = tuple_kind  # the loss's, read once when the run was built (None: read at each step)
        self.register_buffer("embeddings", torch.zeros(size, embedding_dim))  # (size, D)
        self.register_buffer("labels", torch.zeros(size, dtype=torch.long))  # (size,)
        # Python ints, saved through get_extra_state: reading them never waits for the GPU.
        self.filled, self.position, self.steps = 0, 0, 0

    def __len__(self) -> int:
        return self.filled

    def enqueue(self, embeddings: Tensor, labels: Tensor) -> None:
        """Write a batch over the oldest entries (a batch larger than the memory keeps its last `size`)."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embeddings.shape[1] or len(labels) != len(embeddings):
            raise ValueError(
                f"memory=xbm: expected embeddings (B, {self.embeddings.shape[1]}) and labels (B,), got "
                f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        count = min(len(labels), self.size)
        slots = (self.position + torch.arange(count, device=self.embeddings.device)) % self.size  # (count,)
        self.embeddings[slots] = embeddings[-count:].detach().to(self.embeddings.dtype)
        self.labels[slots] = labels[-count:].detach().to(self.labels.dtype)
        self.position = (self.position + count) % self.size
        self.filled = min(self.filled + count, self.size)

    def contents(self) -> tuple[Tensor, Tensor]:
        """What the memory holds, oldest first: embeddings $(M, D)$ and labels $(M,)$, copies."""
        start = self.position if self.filled == self.size else 0
        order = (start + torch.arange(self.filled, device=self.embeddings.device)) % self.size  # (M,)
        return self.embeddings[order], self.labels[order]

    def loss(self, loss: Any, miner: Any, embeddings: Tensor, labels: Tensor) -> Tensor:
        """One training step's loss against the memory (none during warm-up); then the batch is enqueued."""
        if self.steps < self.start_after_steps:
            memory_embeddings, memory_labels = self.embeddings[:0], self.labels[:0]
        else:
            memory_embeddings, memory_labels = self.contents()
        value = cross_batch_loss(
            loss,
            miner,
            embeddings,
            labels,
            memory_embeddings,
            memory_labels,
            max_triplets=self.max_triplets,
            tuple_kind=self.tuple_kind,
        )
        self.enqueue(embeddings, labels)
        self.steps += 1
        return value

    def get_extra_state(self) -> dict[str, int]:
        return {"filled": self.filled, "position": self.position, "steps": self.steps}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.filled, self.position, self.steps = int(state["filled"]), int(state["position"]), int(state["steps"])

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, embedding_dim={self.embeddings.shape[1]}, start_after_steps={self.start_after_steps}, "
            f"max_triplets={self.max_triplets}"
        )
