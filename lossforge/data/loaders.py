"""Batches from in-memory tensors: one indexing operation per batch, not one per sample.

A `DataLoader` over a `TensorDataset` fetches every sample separately and collates them — on small
models that bookkeeping costs more than the forward pass. `InMemoryDataset.__getitems__` hands the
loader the whole batch in one fancy-indexing call, while staying a real map-style dataset, so Lightning
can still insert a `DistributedSampler` under DDP.

The training order is a config group, `sampler`: `random` (`EpochShuffle`, the default) or
`m_per_class` (`MPerClassSampler`: every batch holds `batch_size // m` classes with `m` samples
each, so a metric loss always finds positives). [train_sampler][lossforge.data.loaders.train_sampler] builds the
configured one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from lossforge.data.samples import Split, StreamedSplit
from lossforge.tasks import spec_for

SAMPLERS = ("random", "m_per_class")
"""The options of the `sampler` config group (`conf/sampler/`)."""


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
    """A random order that is a function of `(seed, epoch)` alone.

    Lightning calls `set_epoch` before every epoch, so a run resumed at epoch `k` sees exactly the
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


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's order: a function of `(seed, epoch)` alone (see `EpochShuffle`)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class _Cycle:
    """Items handed out `count` at a time from a reshuffled cycle, never twice in one draw.

    Every item is drawn once before any is drawn again; when fewer than `count` are left in the round,
    those few come first and the rest of the draw starts a fresh round without them.
    """

    def __init__(self, items: list[int], generator: torch.Generator) -> None:
        self.items, self.generator = items, generator
        self.round, self.next = list[int](), 0  # this round's order, and where the next draw starts

    def draw(self, count: int) -> list[int]:
        if count > len(self.items):  # only for a class with fewer than m samples: with replacement
            order = torch.randperm(len(self.items), generator=self.generator).tolist()
            extra = torch.randint(len(self.items), (count - len(self.items),), generator=self.generator).tolist()
            return [self.items[i] for i in order + extra]
        if len(self.round) - self.next < count:
            left = self.round[self.next :]
            taken = set(left)
            rest = [item for item in self.items if item not in taken]
            order = torch.randperm(len(rest), generator=self.generator).tolist()
            self.round, self.next = left + [rest[i] for i in order], 0
        self.next += count
        return self.round[self.next - count : self.next]


class MPerClassSampler(Sampler[int]):
    """Batches of `batch_size // m` distinct classes with `m` samples each, redrawn every epoch.

    Random batches over many classes hold few positives (a batch of 64 over 100 classes has on average
    0.6 samples per class); a metric loss or miner needs several samples of each class in the batch
    (P×K batches, Hermans et al. 2017). Each batch takes the next `batch_size // m` classes of a
    reshuffled cycle over the classes (so every class gets its turn equally often), and of each class the
    next `m` samples of a reshuffled cycle over its samples (so every sample of a class is seen before
    any is seen again); a class with fewer than `m` samples gives each once and the rest drawn again at
    random (with replacement). An epoch is `ceil(N / (batch_size × num_replicas))` steps of whole
    batches, about the dataset's size; like `EpochShuffle`, the order is a function of `(seed, epoch)`
    alone (`set_epoch`), so a resumed run sees the orders an uninterrupted one would.

    DDP: every process draws the same epoch plan and takes its own batches of each step (rank `r` of
    `W`: batches `r, r + W, …`), so processes never share a batch and each process's batch is itself
    m-per-class. When there are at least `W × batch_size // m` classes, the batches of one step have
    distinct classes, so the global batch the loss sees (`lossforge.distributed.global_batch`) is
    m-per-class too; with fewer, a class may appear in the batches of two processes (`2m` of it in the
    global batch). `shard_loader` makes the per-rank copy with
    [for_rank][lossforge.data.loaders.MPerClassSampler.for_rank].

    Args:
        labels: class label of every training sample.
        m: samples per class in a batch.
        batch_size: samples per batch (per process); a multiple of `m`.
        seed: seeds every epoch's draw together with the epoch.
        rank: this process's rank (DDP); 0 in one process.
        num_replicas: the number of processes.

    Shape:
        - labels: $(N,)$ int64

    Examples:
        >>> labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
        >>> sampler = MPerClassSampler(labels, m=2, batch_size=4, seed=0)
        >>> batches = [list(sampler)[start : start + 4] for start in range(0, len(sampler), 4)]
        >>> [sorted(labels[batch].tolist()) for batch in batches]  # 2 classes × 2 samples in every batch
        [[0, 0, 1, 1], [2, 2, 3, 3], [1, 1, 2, 2]]
    """

    def __init__(
        self, labels: Tensor, *, m: int, batch_size: int, seed: int, rank: int = 0, num_replicas: int = 1
    ) -> None:
        if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex():
            raise ValueError(
                "sampler=m_per_class draws m samples per class and needs one integer class label per sample "
                f"(N,), got targets {tuple(labels.shape)} {labels.dtype}; use sampler=random for these targets"
            )
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"sampler=m_per_class: expected `sampler.m` >= 1 (samples per class), got {m!r}")
        if batch_size < 1 or batch_size % m:
            multiples = " or ".join(
                str(k) for k in sorted({batch_size - batch_size % m, batch_size - batch_size % m + m} - {0})
            )
            raise ValueError(
                f"sampler=m_per_class fills each batch with batch_size // m classes of m samples, so batch_size "
                f"must be a multiple of sampler.m; got batch_size={batch_size}, sampler.m={m}. Use "
                f"batch_size={multiples}, or another sampler.m"
            )
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Expected 0 <= `rank` < `num_replicas`, got rank {rank} of {num_replicas}")
        classes = torch.unique(labels)
        self.classes_per_batch = batch_size // m
        if len(classes) < self.classes_per_batch:
            fewest = math.ceil(batch_size / len(classes))
            fitting = next(k for k in range(fewest, batch_size + 1) if batch_size % k == 0)
            raise ValueError(
                f"sampler=m_per_class with batch_size={batch_size} and sampler.m={m} needs "
                f"{self.classes_per_batch} distinct classes per batch, but the training split has "
                f"{len(classes)}; use sampler.m={fitting} (batch_size // m <= {len(classes)} classes), a smaller "
                "batch_size, or sampler=random"
            )
        self.labels, self.m, self.batch_size, self.seed = labels, m, batch_size, seed
        self.rank, self.num_replicas, self.epoch = rank, num_replicas, 0
        self.members = [torch.nonzero(labels == label).flatten().tolist() for label in classes]  # per class
        self.steps = max(1, math.ceil(len(labels) / (batch_size * num_replicas)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def for_rank(self, *, rank: int, num_replicas: int) -> MPerClassSampler:
        """This sampler for process `rank` of `num_replicas` (what `shard_loader` asks for)."""
        sampler = MPerClassSampler(
            self.labels, m=self.m, batch_size=self.batch_size, seed=self.seed, rank=rank, num_replicas=num_replicas
        )
        sampler.set_epoch(self.epoch)
        return sampler

    def epoch_batches(self) -> list[list[int]]:
        """Every process's batches of this epoch, step by step: process `r`'s batch of step `s` is at
        `s × num_replicas + r`. The same on every process."""
        generator = _epoch_generator(self.seed, self.epoch)
        class_cycle = _Cycle(list(range(len(self.members))), generator)
        sample_cycles = [_Cycle(members, generator) for members in self.members]
        per_step = self.classes_per_batch * self.num_replicas
        batches = []
        for _ in range(self.steps):
            if per_step <= len(self.members):  # distinct classes over the whole global batch
                chosen = class_cycle.draw(per_step)
                groups = [chosen[r :: self.num_replicas] for r in range(self.num_replicas)]
            else:  # distinct within each process's batch
                groups = [class_cycle.draw(self.classes_per_batch) for _ in range(self.num_replicas)]
            batches += [[index for c in group for index in sample_cycles[c].draw(self.m)] for group in groups]
        return batches

    def __iter__(self) -> Iterator[int]:
        batches = self.epoch_batches()
        return iter([index for batch in batches[self.rank :: self.num_replicas] for index in batch])

    def __len__(self) -> int:
        return self.steps * self.batch_size


def train_sampler(
    config: Mapping[str, Any] | None, targets: Tensor, *, task: str, batch_size: int, seed: int
) -> Sampler[int]:
    """The training order the `sampler` config group names (`None`: `random`, as before it existed).

    `task` is the dataset's task: `m_per_class` needs one class label per sample.

    ```pycon
    >>> train_sampler({"name": "m_per_class", "m": 4}, torch.zeros(8), task="regression", batch_size=8,
    ...               seed=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: sampler=m_per_class draws m samples of each class, so it needs class labels, but the dataset is ...

    ```
    """
    options = dict(config or {"name": "random"})
    name = options.pop("name", "random")
    if name == "random":
        if options:
            raise ValueError(f"sampler=random takes no options, got {sorted(options)}")
        return EpochShuffle(len(targets), seed)
    if name == "m_per_class":
        if not spec_for(task).class_labels:
            raise ValueError(
                f"sampler=m_per_class draws m samples of each class, so it needs class labels, but the dataset "
                f"is a {task} task; use sampler=random"
            )
        unknown = sorted(set(options) - {"m"})
        if unknown:
            raise ValueError(f"sampler=m_per_class takes only `m` (samples per class), got {unknown}")
        return MPerClassSampler(targets, m=options.get("m", 4), batch_size=batch_size, seed=seed)
    raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def keep_batch(batch: Any) -> Any:
    """The collate function for `__getitems__` batches: they are already stacked `(features, targets)`."""
    return batch


def make_loader(
    split: Split | StreamedSplit,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    per_sample: bool = False,
    sampler: Sampler[int] | None = None,
) -> DataLoader:
    """A loader over `split`; `per_sample=True` gives the classic per-sample collation (benchmarks).

    `sampler` (e.g. [train_sampler][lossforge.data.loaders.train_sampler]'s) sets the order; without one, `shuffle`
    chooses between an `EpochShuffle` and the split's own order. A
    [StreamedSplit][lossforge.data.samples.StreamedSplit] is read per sample by its `num_workers` DataLoader worker
    processes (kept alive between epochs).
    """
    if batch_size < 1:
        raise ValueError(f"expected `batch_size` >= 1, got {batch_size}")
    if sampler is None and shuffle:
        sampler = EpochShuffle(len(split.targets), seed)
    if isinstance(split, StreamedSplit):
        workers = split.num_workers
        return DataLoader(
            split.samples(), batch_size=batch_size, sampler=sampler, num_workers=workers, persistent_workers=workers > 0
        )
    if per_sample:
        dataset: Dataset = torch.utils.data.TensorDataset(split.features, split.targets)
        collate = None
    else:
        dataset, collate = InMemoryDataset(split.features, split.targets), keep_batch
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)
