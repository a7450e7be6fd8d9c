"""Batches from in-memory tensors: one indexing operation per batch, not one per sample.

A ``DataLoader`` over a ``TensorDataset`` fetches every sample separately and collates them — on small
models that bookkeeping costs more than the forward pass. ``InMemoryDataset.__getitems__`` hands the
loader the whole batch in one fancy-indexing call, while staying a real map-style dataset, so Lightning
can still insert a ``DistributedSampler`` under DDP.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lossforge.data.base import Split


class InMemoryDataset(Dataset):
    """Features and targets held as tensors; indexable one sample at a time or a batch at a time."""

    def __init__(self, features: Tensor, targets: Tensor) -> None:
        if len(features) != len(targets):
            raise ValueError(f"expected as many targets as samples, got {len(targets)} and {len(features)}")
        self.features, self.targets = features, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.features[index], self.targets[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices)
        return self.features[index], self.targets[index]  # (B, F), (B, …)


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The collate function for ``__getitems__`` batches: they are already stacked."""
    return batch


def make_loader(split: Split, *, batch_size: int, shuffle: bool, seed: int, per_sample: bool = False) -> DataLoader:
    """A loader over ``split``; ``per_sample=True`` gives the classic per-sample collation (benchmarks)."""
    if batch_size < 1:
        raise ValueError(f"expected `batch_size` >= 1, got {batch_size}")
    if per_sample:
        dataset: Dataset = torch.utils.data.TensorDataset(split.features, split.targets)
        collate = None
    else:
        dataset, collate = InMemoryDataset(split.features, split.targets), keep_batch
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)
