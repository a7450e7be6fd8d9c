"""The training order (``lossforge.data.loaders``): ``sampler=m_per_class`` batches of ``batch_size // m`` classes
with ``m`` samples each, redrawn per epoch from the seed, one batch per process under DDP; and its errors."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from helpers import compose_config

from lossforge.data.base import Split
from lossforge.data.loaders import EpochShuffle, MPerClassSampler, make_loader, train_sampler
from lossforge.distributed import shard_loader


def balanced_labels(classes: int, per_class: int) -> torch.Tensor:
    return torch.arange(classes).repeat_interleave(per_class)


def batches_of(sampler: MPerClassSampler) -> list[list[int]]:
    order = list(sampler)
    assert len(order) == len(sampler)
    return [order[start : start + sampler.batch_size] for start in range(0, len(order), sampler.batch_size)]


LABELS = {
    "balanced": balanced_labels(10, 30),
    "imbalanced": torch.cat([torch.full((count,), label) for label, count in enumerate([50, 20, 9, 5, 3, 2, 1, 40])]),
}


@pytest.mark.parametrize("labels_name", sorted(LABELS))
@pytest.mark.parametrize(("m", "batch_size"), [(4, 16), (2, 8), (5, 10), (1, 6), (3, 3)])
def test_every_batch_has_batch_size_over_m_classes_with_m_samples_each(
    labels_name: str, m: int, batch_size: int
) -> None:
    labels = LABELS[labels_name]
    sampler = MPerClassSampler(labels, m=m, batch_size=batch_size, seed=0)
    batches = batches_of(sampler)
    assert all(len(batch) == batch_size for batch in batches)
    for batch in batches:
        counts = Counter(labels[batch].tolist())
        assert len(counts) == batch_size // m and set(counts.values()) == {m}
    # a class with at least m samples never repeats one inside a batch; one with fewer gives each of them
    sizes = Counter(labels.tolist())
    for batch in batches:
        for label in set(labels[batch].tolist()):
            members = [index for index in batch if labels[index] == label]
            if sizes[label] >= m:
                assert len(set(members)) == m
            else:
                assert len(set(members)) == sizes[label]


def test_an_epoch_is_about_the_dataset_and_visits_each_class_evenly() -> None:
    labels = balanced_labels(10, 30)  # 300 samples
    sampler = MPerClassSampler(labels, m=4, batch_size=20, seed=1)
    order = list(sampler)
    assert len(order) == 300  # ceil(300 / 20) = 15 batches of 20
    # classes take turns (a reshuffled cycle) and so do the samples of a class: all are seen, evenly
    per_class = Counter(labels[order].tolist())
    assert max(per_class.values()) - min(per_class.values()) <= 4
    per_sample = Counter(order)
    assert len(per_sample) >= 290 and max(per_sample.values()) <= 2


def test_the_order_is_a_function_of_seed_and_epoch() -> None:
    labels = balanced_labels(6, 12)

    def order(seed: int, epoch: int) -> list[int]:
        sampler = MPerClassSampler(labels, m=3, batch_size=9, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 0) == order(0, 0) and order(0, 3) == order(0, 3)  # a resumed run replays its epochs
    assert order(0, 0) != order(0, 1)  # every epoch is redrawn
    assert order(0, 0) != order(1, 0)
    sampler = MPerClassSampler(labels, m=3, batch_size=9, seed=0)
    first = list(sampler)
    assert list(sampler) == first  # iterating again without set_epoch: the same epoch
    sampler.set_epoch(1)
    assert list(sampler) == order(0, 1)


@pytest.mark.parametrize(("classes", "world_size"), [(12, 2), (10, 3), (4, 2), (3, 2)])
def test_under_ddp_each_process_gets_its_own_m_per_class_batches(classes: int, world_size: int) -> None:
    labels = balanced_labels(classes, 20)
    single = make_loader(
        Split(torch.zeros(len(labels), 1), labels),
        batch_size=8,
        shuffle=True,
        seed=0,
        sampler=MPerClassSampler(labels, m=4, batch_size=8, seed=5),
    )
    shards = [shard_loader(single, rank=rank, num_replicas=world_size) for rank in range(world_size)]
    for epoch in (0, 1):
        for shard in shards:
            shard.sampler.set_epoch(epoch)  # what Lightning does per epoch
        steps = [[batch[1] for batch in shard] for shard in shards]  # targets of each step's batch
        orders = [list(shard.sampler) for shard in shards]
        assert len({len(rank_steps) for rank_steps in steps}) == 1  # the same number of steps: nobody waits
        assert sum(len(order) for order in orders) >= len(labels)  # together about one pass over the data
        plan = MPerClassSampler(labels, m=4, batch_size=8, seed=5, num_replicas=world_size)
        plan.set_epoch(epoch)
        expected = plan.epoch_batches()
        for step in range(len(steps[0])):
            parts = [orders[rank][step * 8 : (step + 1) * 8] for rank in range(world_size)]
            assert parts == expected[step * world_size : (step + 1) * world_size]  # one plan, split by rank
            for rank, part in enumerate(parts):
                assert steps[rank][step].tolist() == labels[part].tolist()
                assert sorted(Counter(labels[part].tolist()).values()) == [4, 4]
            if classes >= 2 * world_size:  # enough classes: the step's batches share no class, no sample
                step_classes = [set(labels[part].tolist()) for part in parts]
                assert len(set().union(*step_classes)) == 2 * world_size
                assert len(set().union(*map(set, parts))) == 8 * world_size


def test_for_rank_keeps_the_epoch() -> None:
    sampler = MPerClassSampler(balanced_labels(4, 8), m=2, batch_size=4, seed=0)
    sampler.set_epoch(7)
    assert sampler.for_rank(rank=1, num_replicas=2).epoch == 7


def test_the_random_sampler_is_the_default() -> None:
    sampler = train_sampler(None, torch.zeros(10, dtype=torch.long), task="multiclass", batch_size=4, seed=3)
    assert isinstance(sampler, EpochShuffle) and list(sampler) == list(EpochShuffle(10, 3))
    cfg = compose_config()
    assert cfg.sampler.name == "random" and cfg.memory is None
    chosen = train_sampler(cfg.sampler, torch.zeros(10, dtype=torch.long), task="multiclass", batch_size=4, seed=3)
    assert isinstance(chosen, EpochShuffle)


def test_the_config_group_builds_the_sampler() -> None:
    cfg = compose_config("sampler=m_per_class", "sampler.m=8", "batch_size=32")
    sampler = train_sampler(cfg.sampler, balanced_labels(10, 5), task="multiclass", batch_size=cfg.batch_size, seed=0)
    assert isinstance(sampler, MPerClassSampler) and sampler.m == 8 and sampler.classes_per_batch == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 3, "batch_size": 10}, r"batch_size must be a multiple of sampler.m.*batch_size=9 or 12"),
        ({"m": 0, "batch_size": 10}, r"expected `sampler.m` >= 1"),
        (
            {"m": 2, "batch_size": 16},
            r"needs 8 distinct classes per batch, but the training split has 4; use sampler.m=4",
        ),
    ],
)
def test_bad_settings_say_what_sampler_m_per_class_needs(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        MPerClassSampler(balanced_labels(4, 10), seed=0, **kwargs)
    assert "sampler=m_per_class" in str(error.value)


def test_targets_that_are_not_class_labels_are_refused() -> None:
    with pytest.raises(ValueError, match=r"sampler=m_per_class .* needs class labels, but the dataset is a regression"):
        train_sampler({"name": "m_per_class", "m": 2}, torch.randn(20), task="regression", batch_size=4, seed=0)
    with pytest.raises(ValueError, match=r"sampler=m_per_class .* one integer class label per sample"):
        MPerClassSampler(torch.zeros(20, 3), m=2, batch_size=4, seed=0)  # multilabel rows
    with pytest.raises(ValueError, match=r"sampler=m_per_class takes only `m`"):
        train_sampler(
            {"name": "m_per_class", "k": 2}, torch.zeros(8, dtype=torch.long), task="multiclass", batch_size=4, seed=0
        )
    with pytest.raises(ValueError, match=r"unknown sampler 'p_k'; expected one of random, m_per_class"):
        train_sampler({"name": "p_k"}, torch.zeros(8, dtype=torch.long), task="multiclass", batch_size=4, seed=0)


def test_a_regression_run_with_m_per_class_fails_before_training() -> None:
    from lossforge import distributed
    from lossforge.training.build import build
    from lossforge.training.run import make_loaders

    cfg = compose_config("dataset=regression_outliers", "loss=l2", "sampler=m_per_class", "model.hidden=[8]")
    built = build(cfg)
    with pytest.raises(ValueError, match=r"sampler=m_per_class .* regression task; use sampler=random"):
        make_loaders(cfg, built, distributed.Processes())
