"""Each process's share of the training data: its part of every global batch of the epoch's order.

A sampler that plans whole batches itself (`MPerClassSampler`: each batch is m-per-class, which a
strided cut would break) says so with a `for_rank(rank=, num_replicas=)` method; `shard_loader` then
asks it for this process's copy instead of wrapping it in `GlobalBatchShard`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized

from torch.utils.data import DataLoader, Sampler


class GlobalBatchShard(Sampler[int]):
    """This process's share of every global batch of `sampler`'s order.

    One epoch of `sampler` is cut into global batches of `batch_size × num_replicas` indices; process
    `rank` takes positions `rank, rank + num_replicas, …` of each, so every process has `batch_size`
    samples per step (the last step: within one of each other) and the shares of a step together are that
    global batch. Unlike `DistributedSampler` nothing is padded in twice; a last global batch with fewer
    samples than processes is dropped (a process without samples would miss the step and stall the
    others). `set_epoch` is passed on to `sampler` — Lightning's `DistributedSamplerWrapper` keeps
    it, and a wrapped `EpochShuffle` would then repeat epoch 0's order forever.

    Args:
        sampler: the single-process order (e.g. `EpochShuffle`); iterated once per epoch.
        batch_size: samples per process per step.
        rank: this process's global rank.
        num_replicas: the number of processes.

    Examples:
        >>> shares = [list(GlobalBatchShard(range(11), batch_size=2, rank=r, num_replicas=2)) for r in (0, 1)]
        >>> shares  # global batches [0..3], [4..7], [8, 9, 10]
        [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]
    """

    def __init__(self, sampler: Iterable[int], *, batch_size: int, rank: int, num_replicas: int) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Expected 0 <= `rank` < `num_replicas`, got rank {rank} of {num_replicas}")
        if batch_size < 1:
            raise ValueError(f"Expected `batch_size` >= 1, got {batch_size}")
        self.sampler, self.batch_size, self.rank, self.num_replicas = sampler, batch_size, rank, num_replicas

    def set_epoch(self, epoch: int) -> None:
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def _kept(self, total: int) -> int:
        """How many of `total` indices are used: all but a last global batch smaller than the world."""
        remainder = total % (self.batch_size * self.num_replicas)
        return total - remainder if remainder < self.num_replicas else total

    def __iter__(self) -> Iterator[int]:
        order = list(self.sampler)
        order = order[: self._kept(len(order))]
        step = self.batch_size * self.num_replicas
        for start in range(0, len(order), step):
            yield from order[start : start + step][self.rank :: self.num_replicas]

    def __len__(self) -> int:
        assert isinstance(self.sampler, Sized)
        kept = self._kept(len(self.sampler))
        return len(range(self.rank, kept, self.num_replicas))


def shard_loader(loader: DataLoader, *, rank: int, num_replicas: int) -> DataLoader:
    """`loader` with its sampler replaced by this process's share of it: the sampler's own `for_rank`
    copy when it has one (it plans whole batches per process), else a `GlobalBatchShard` of it."""
    assert loader.batch_size is not None, "shard_loader needs a loader with a batch_size"
    for_rank: Callable[..., Sampler[int]] | None = getattr(loader.sampler, "for_rank", None)
    if callable(for_rank):
        sampler: Sampler[int] = for_rank(rank=rank, num_replicas=num_replicas)
    else:
        sampler = GlobalBatchShard(loader.sampler, batch_size=loader.batch_size, rank=rank, num_replicas=num_replicas)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
    )
