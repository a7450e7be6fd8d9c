"""Each process's share of the training data (``lossforge.distributed.sharding``): disjoint shares that together
are exactly the single-process global batch, reshuffled every epoch."""

from __future__ import annotations

import pytest

from lossforge.data.loaders import EpochShuffle
from lossforge.distributed import GlobalBatchShard, shard_loader


@pytest.mark.parametrize("size", [1257, 64, 65, 129, 10, 3])
@pytest.mark.parametrize(("batch_size", "world_size"), [(32, 2), (4, 3), (1, 2), (5, 4)])
def test_shares_are_disjoint_and_each_step_is_the_single_process_batch(
    size: int, batch_size: int, world_size: int
) -> None:
    order = list(EpochShuffle(size, seed=3))
    global_batch = batch_size * world_size
    single = [set(order[start : start + global_batch]) for start in range(0, size, global_batch)]
    if single and len(single[-1]) < world_size:  # too small to give every process a sample: dropped
        single = single[:-1]
    shares = []
    for rank in range(world_size):
        sampler = GlobalBatchShard(
            EpochShuffle(size, seed=3), batch_size=batch_size, rank=rank, num_replicas=world_size
        )
        indices = list(sampler)
        assert len(indices) == len(sampler)
        shares.append([indices[start : start + batch_size] for start in range(0, len(indices), batch_size)])
    assert all(len(steps) == len(single) for steps in shares)  # same number of steps: nobody waits forever
    for step, batch in enumerate(single):
        parts = [set(steps[step]) for steps in shares]
        assert set().union(*parts) == batch and sum(map(len, parts)) == len(batch)  # disjoint, complete
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_every_epoch_is_reshuffled_and_an_epoch_replays_exactly() -> None:
    sampler = GlobalBatchShard(EpochShuffle(100, seed=0), batch_size=8, rank=1, num_replicas=2)
    first = list(sampler)
    sampler.set_epoch(1)  # what Lightning calls on the loader's sampler before every epoch
    second = list(sampler)
    assert first != second and sorted(first) != sorted(second)  # a new order and a new share
    sampler.set_epoch(0)
    assert list(sampler) == first  # a resumed run sees the same orders


def test_shard_loader_keeps_batching_and_collation() -> None:
    from lossforge.data import build_dataset
    from lossforge.data.loaders import make_loader

    data = build_dataset("digits", seed=0)
    loader = make_loader(data.train, batch_size=32, shuffle=True, seed=0)
    shards = [shard_loader(loader, rank=r, num_replicas=2) for r in (0, 1)]
    features, targets = next(iter(shards[1]))
    assert features.shape == (32, 64) and targets.shape == (32,)
    assert [len(shard) for shard in shards] == [20, 20]  # 1257 samples: 19 steps of 64, then 41 = 21 + 20


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 2, "rank": 2, "num_replicas": 2}, "rank"),
        ({"batch_size": 0, "rank": 0, "num_replicas": 2}, "batch_size"),
    ],
)
def test_an_impossible_share_is_refused(arguments: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=f"Expected .*`{message}`"):
        GlobalBatchShard(range(10), **arguments)
