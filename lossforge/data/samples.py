"""One split of a dataset: `Split` (features and targets in memory) or `StreamedSplit` (samples read from
a `Dataset` batch by batch, targets in memory), and the fingerprint that says two splits hold the same
examples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy
import torch
from torch import Tensor


@dataclass(frozen=True, eq=False)  # eq=False: `==` on tensors is elementwise, not a truth value
class Split:
    """One split of a dataset: features and the targets the task needs.

    Shape:
        - features: $(N, *S)$ float32 for any per-sample shape $S$ (`(F,)` for tables), or
          `uint8` images $(N, C, H, W)$, converted to float and normalised on the training device.
        - targets: multiclass/binary $(N,)$ int64 class index (binary: 0/1); multilabel
          $(N, K)$ float32 in {0, 1}; regression $(N,)$ or $(N, D)$ float32 (what each
          task accepts is its `TaskSpec.check_targets`).

    Examples:
        >>> split = Split(torch.zeros(4, 2), torch.tensor([0, 1, 1, 0]))
        >>> len(split)
        4
        >>> len(split.subset(torch.tensor([0, 2])))
        2
    """

    features: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def subset(self, indices: Tensor) -> Split:
        """The samples at `indices` (an int64 index tensor), as a new `Split`."""
        return Split(self.features[indices], self.targets[indices])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        return tuple(int(size) for size in self.features.shape[1:])

    @property
    def dtype(self) -> torch.dtype:
        """The features' dtype (float32, or uint8 images)."""
        return self.features.dtype

    def head(self, count: int) -> Tensor:
        """The first `count` samples' features, `(count, *sample_shape)`."""
        return self.features[:count]


class _Samples(torch.utils.data.Dataset):
    """A streamed split's dataset as lossforge's loaders read it: `(features tensor, target)` per index,
    the target taken from the split's `targets` (so its dtype is the task's, whatever the dataset returns)."""

    def __init__(self, dataset: Any, targets: Tensor) -> None:
        self.dataset, self.targets = dataset, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return torch.as_tensor(numpy.asarray(self.dataset[index][0])), self.targets[index]


@dataclass(frozen=True, eq=False)
class StreamedSplit:
    """A split whose samples stay where the dataset keeps them (files on disk): a `torch.utils.data.Dataset`
    read by DataLoader workers batch by batch, with all of its targets held in memory (samplers, class weights
    and class-disjoint splits read them without decoding a sample).

    Shape:
        - each sample: `sample_shape` of `dtype` (float32, or uint8 images).
        - targets: as [Split][lossforge.data.samples.Split]'s.

    Examples:
        >>> samples = [(torch.full((1, 2, 2), i, dtype=torch.uint8), i % 2) for i in range(4)]
        >>> split = StreamedSplit.of(samples, torch.tensor([0, 1, 0, 1]))
        >>> len(split), split.sample_shape, split.dtype, tuple(split.head(3).shape)
        (4, (1, 2, 2), torch.uint8, (3, 1, 2, 2))
    """

    dataset: Any  # a map-style Dataset: dataset[i] -> (sample, target)
    targets: Tensor
    sample_shape: tuple[int, ...]
    dtype: torch.dtype
    num_workers: int = 0  # DataLoader worker processes that decode it

    @classmethod
    def of(cls, dataset: Any, targets: Tensor, *, num_workers: int = 0) -> StreamedSplit:
        """A streamed split of `dataset`; its first sample gives the shape and dtype."""
        first = torch.as_tensor(numpy.asarray(dataset[0][0])) if len(targets) else torch.zeros(0)
        return cls(dataset, targets, tuple(int(size) for size in first.shape), first.dtype, num_workers)

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: Tensor) -> StreamedSplit:
        """The samples at `indices`, still streamed."""
        chosen = torch.utils.data.Subset(self.dataset, indices.tolist())
        return StreamedSplit(chosen, self.targets[indices], self.sample_shape, self.dtype, self.num_workers)

    def head(self, count: int) -> Tensor:
        """The first `count` samples, decoded and stacked, `(count, *sample_shape)`."""
        samples = _Samples(self.dataset, self.targets)
        return torch.stack([samples[index][0] for index in range(min(count, len(self)))])

    def samples(self) -> torch.utils.data.Dataset:
        """The dataset as lossforge's loaders read it: `(features, target)` tensors per index."""
        return _Samples(self.dataset, self.targets)


# -- provenance ------------------------------------------------------------------------------------------
def split_fingerprint(split: Split | StreamedSplit) -> str:
    """SHA-256 (hex) over a split's targets and a content hash of its features — dtypes, shapes and bytes —
    so two runs that tested on the same examples log the same value (`data.test_digest`, docs/decisions.md
    §1), whatever their run seed. A streamed split is not decoded: its targets, sample shape and dtype are
    hashed with its dataset's `fingerprint` attribute when it has one (an image folder's file-list digest).

    ```pycon
    >>> a = Split(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    >>> split_fingerprint(a) == split_fingerprint(Split(torch.zeros(3, 2), torch.tensor([0, 1, 0])))
    True
    >>> split_fingerprint(a) == split_fingerprint(Split(torch.ones(3, 2), torch.tensor([0, 1, 0])))
    False

    ```
    """
    features = hashlib.sha256()
    if isinstance(split, StreamedSplit):
        inner = split.dataset.dataset if isinstance(split.dataset, torch.utils.data.Subset) else split.dataset
        indices = getattr(split.dataset, "indices", None)
        features.update(f"{split.dtype}{split.sample_shape};{getattr(inner, 'fingerprint', '')};{indices}".encode())
        array = torch.zeros(0)
    else:
        array = split.features.detach().cpu().contiguous()
    features.update(f"{array.dtype}{tuple(array.shape)};".encode())
    features.update(array.flatten().view(torch.uint8).numpy().tobytes())
    digest = hashlib.sha256()
    targets = split.targets.detach().cpu().contiguous()
    digest.update(f"{targets.dtype}{tuple(targets.shape)};".encode())
    digest.update(targets.flatten().view(torch.uint8).numpy().tobytes())
    digest.update(features.digest())
    return digest.hexdigest()
