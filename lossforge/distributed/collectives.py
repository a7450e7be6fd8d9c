"""Collectives over the processes of one DDP run: every process's tensors in rank order, and the global batch.

Outside a process group of more than one process every function here is the identity, so single-process
training calls them unchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_gather(tensor: Tensor) -> list[Tensor]:
    """Every process's `tensor` (no gradient), in rank order; dim 0 may differ between processes."""
    if tensor.dtype == torch.bool:  # not every backend gathers bools
        return [part.bool() for part in _all_gather(tensor.to(torch.uint8))]
    world_size = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.empty_like(size) for _ in range(world_size)]
    dist.all_gather(sizes, size)
    lengths = [int(length) for length in sizes]
    padded = tensor.new_zeros((max(lengths), *tensor.shape[1:]))  # all_gather needs equal shapes
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(parts, padded)
    return [part[:length] for part, length in zip(parts, lengths, strict=True)]


def gather(tensor: Tensor) -> Tensor:
    """Every process's `tensor` concatenated along dim 0 in rank order, without gradient.

    Not distributed: `tensor` itself.

    Examples:
        >>> labels = torch.tensor([0, 1, 1])
        >>> gather(labels) is labels
        True
    """
    if not is_distributed():
        return tensor
    return torch.cat(_all_gather(tensor.detach()))


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Every process's `tensor` concatenated along dim 0 in rank order; gradients reach the local slice.

    The other processes' slices are constants here: a loss $L$ of the result backpropagates
    $\\partial L / \\partial x_r$ into this process's own rows $x_r$ only. Each process owns
    different rows, so the sum over processes of these partial gradients is the gradient of $L$
    with respect to the whole global batch (`global_batch` undoes DDP's averaging).

    Args:
        tensor: this process's part of the batch; dim 0 may differ between processes.

    Shape:
        - tensor: $(B_r, *)$
        - Output: $(\\sum_r B_r, *)$, rows of rank 0 first

    Examples:
        >>> embeddings = torch.ones(2, 3, requires_grad=True)
        >>> gather_with_grad(embeddings) is embeddings  # not distributed: the identity
        True
    """
    if not is_distributed():
        return tensor
    parts = _all_gather(tensor.detach())
    parts[dist.get_rank()] = tensor  # the one slice that carries this process's graph
    return torch.cat(parts)


def global_batch(outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, int]:
    """The batch a training loss sees: every process's outputs and targets, and the gradient scale.

    Returns `(outputs, targets, scale)`: outputs gathered with `gather_with_grad`, targets with
    `gather`, and `scale` = the world size — multiply the loss by it before `backward` so that DDP's
    average of the per-process gradients equals the single-process gradient of the global batch. Not
    distributed: `(outputs, targets, 1)`.

    Shape:
        - outputs: $(B_r, *)$, targets: $(B_r, *)$
        - Output: $(B, *)$, $(B, *)$ with $B = \\sum_r B_r$, and an int

    Examples:
        >>> outputs, targets = torch.zeros(4, 10), torch.arange(4)
        >>> global_batch(outputs, targets)[2]
        1
    """
    if not is_distributed():
        return outputs, targets, 1
    return gather_with_grad(outputs), gather(targets), dist.get_world_size()
