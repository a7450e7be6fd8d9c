"""Batches from in-memory tensors: one indexing operation per batch, not one per sample.

A ``DataLoader`` over a ``TensorDataset`` fetches every sample separately and collates them — on small
models that bookkeeping costs more than the forward pass. ``InMemoryDataset.__getitems__`` hands the
loader the whole batch in one fancy-indexing call, while staying a real map-style dataset, so Lightning
can still insert a ``DistributedSampler`` under DDP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

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


class EpochShuffle(Sampler[int]):
    """A random order that is a function of ``(seed, epoch)`` alone.

    Lightning calls ``set_epoch`` before every epoch, so a run resumed at epoch ``k`` sees exactly the
    orders an uninterrupted run would have — a generator carried across epochs would restart instead.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def keep_batch(batch: Any) -> Any:
    """The collate function for ``__getitems__`` batches: they are already stacked ``(features, targets)``."""
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
    sampler = EpochShuffle(len(split.targets), seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)
