"""Miners against explicit loops over all pairs / triplets, with ties and single-member classes."""

from __future__ import annotations

import pytest
import torch

from lossforge import build_miner
from lossforge.mining.distances import DISTANCES, pairwise_distance
from lossforge.mining.miners import (
    AllPairsMiner,
    AllTripletsMiner,
    HardPairsMiner,
    HardTripletsMiner,
    SemiHardTripletsMiner,
    batch_hard_triplet_indices,
    hard_pair_indices,
    semihard_triplet_indices,
)
from lossforge.mining.tuples import all_triplet_indices

Pairs = tuple[list[tuple[int, int]], list[tuple[int, int]]]


def batch(seed: int, num: int = 14, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Small integer-valued float64 embeddings: distances are exact, so ties really are ties."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randint(-2, 3, (num, 3), generator=generator).double()
    embeddings[3] = embeddings[0]  # duplicates: zero distance and tied rows
    embeddings[5] = embeddings[2]
    labels = torch.randint(classes, (num,), generator=generator)
    labels[-1] = classes + 7  # a class with a single member: no positive
    return embeddings, labels


BATCHES = [batch(seed) for seed in range(4)] + [batch(10, num=6, classes=1)]


def as_pairs(result: tuple[torch.Tensor, ...]) -> Pairs:
    a1, p, a2, n = (t.tolist() for t in result)
    return list(zip(a1, p, strict=True)), list(zip(a2, n, strict=True))


def as_triplets(result: tuple[torch.Tensor, ...]) -> list[tuple[int, int, int]]:
    return list(zip(*(t.tolist() for t in result), strict=True))


def positives_of(labels: list[int], a: int) -> list[int]:
    return [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]


def negatives_of(labels: list[int], a: int) -> list[int]:
    return [n for n in range(len(labels)) if labels[n] != labels[a]]


def check_index_tensors(result: tuple[torch.Tensor, ...], size: int) -> None:
    assert len(result) == size
    assert all(t.dtype == torch.int64 and t.dim() == 1 and not t.requires_grad for t in result)


@pytest.mark.parametrize("embeddings, labels", BATCHES)
def test_all_pairs(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    y = labels.tolist()
    result = AllPairsMiner()(embeddings, labels)
    check_index_tensors(result, 4)
    expected = (
        [(a, p) for a in range(len(y)) for p in positives_of(y, a)],
        [(a, n) for a in range(len(y)) for n in negatives_of(y, a)],
    )
    assert as_pairs(result) == expected


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("margin", [0.0, 2.0, 5.0])  # integer margins hit exact ties
@pytest.mark.parametrize("embeddings, labels", BATCHES)
def test_hard_pairs(embeddings: torch.Tensor, labels: torch.Tensor, distance: str, margin: float) -> None:
    y, d = labels.tolist(), pairwise_distance(embeddings, distance=distance).tolist()
    result = HardPairsMiner(margin=margin, distance=distance)(embeddings, labels)
    check_index_tensors(result, 4)
    positives, negatives = [], []
    for a in range(len(y)):
        closest_negative = min((d[a][n] for n in negatives_of(y, a)), default=float("inf"))
        farthest_positive = max((d[a][p] for p in positives_of(y, a)), default=float("-inf"))
        positives += [(a, p) for p in positives_of(y, a) if d[a][p] > closest_negative]
        negatives += [(a, n) for n in negatives_of(y, a) if d[a][n] < farthest_positive or d[a][n] < margin]
    assert as_pairs(result) == (positives, negatives)


def loop_batch_hard(d: list[list[float]], y: list[int]) -> list[tuple[int, int, int]]:
    triplets = []
    for a in range(len(y)):
        positives, negatives = positives_of(y, a), negatives_of(y, a)
        if not positives or not negatives:
            continue
        farthest, closest = positives[0], negatives[0]
        for p in positives:  # strict comparisons: the lowest index wins a tie
            farthest = p if d[a][p] > d[a][farthest] else farthest
        for n in negatives:
            closest = n if d[a][n] < d[a][closest] else closest
        triplets.append((a, farthest, closest))
    return triplets


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("embeddings, labels", BATCHES)
def test_hard_triplets(embeddings: torch.Tensor, labels: torch.Tensor, distance: str) -> None:
    d = pairwise_distance(embeddings, distance=distance).tolist()
    result = HardTripletsMiner(distance=distance)(embeddings, labels)
    check_index_tensors(result, 3)
    assert as_triplets(result) == loop_batch_hard(d, labels.tolist())


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("margin", [0.5, 2.0, 6.0])
@pytest.mark.parametrize("embeddings, labels", BATCHES)
def test_semihard_triplets(embeddings: torch.Tensor, labels: torch.Tensor, distance: str, margin: float) -> None:
    y, d = labels.tolist(), pairwise_distance(embeddings, distance=distance).tolist()
    result = SemiHardTripletsMiner(margin=margin, distance=distance)(embeddings, labels)
    check_index_tensors(result, 3)
    expected = []
    for a in range(len(y)):
        for p in positives_of(y, a):
            band = [n for n in negatives_of(y, a) if d[a][p] < d[a][n] < d[a][p] + margin]
            if band:  # no semi-hard negative: the pair is dropped
                expected.append((a, p, min(band, key=lambda n: (d[a][n], n))))
    assert as_triplets(result) == expected


def test_semihard_chunks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings, labels = batch(5, num=40, classes=3)
    distances = pairwise_distance(embeddings, distance="euclidean")
    whole = semihard_triplet_indices(distances, labels, 1.5)
    monkeypatch.setattr("lossforge.mining.miners._CHUNK_ELEMENTS", 3 * 40)  # 3 rows per chunk
    chunked = semihard_triplet_indices(distances, labels, 1.5)
    assert as_triplets(chunked) == as_triplets(whole) and len(whole[0]) > 0


def loop_all_triplets(y: list[int]) -> list[tuple[int, int, int]]:
    return [(a, p, n) for a in range(len(y)) for p in positives_of(y, a) for n in negatives_of(y, a)]


@pytest.mark.parametrize("embeddings, labels", BATCHES)
def test_all_triplets(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    result = AllTripletsMiner()(embeddings, labels)
    check_index_tensors(result, 3)
    assert as_triplets(result) == loop_all_triplets(labels.tolist())


@pytest.mark.parametrize("cap", [1, 50, 300])  # 300: a permutation; 1 and 50: draws with rejection
def test_all_triplets_cap_samples_distinct_valid_triplets(cap: int) -> None:
    embeddings, labels = batch(0)
    every = set(loop_all_triplets(labels.tolist()))
    assert 4 * 50 < len(every) < 4 * 300
    torch.manual_seed(0)
    sampled = as_triplets(AllTripletsMiner(max_triplets=cap)(embeddings, labels))
    assert len(sampled) == cap == len(set(sampled))
    assert set(sampled) <= every and sampled == sorted(sampled)


def test_all_triplets_cap_is_uniform() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1])  # 3·2·2 + 2·1·3 = 18 triplets
    torch.manual_seed(0)
    counts: dict[tuple[int, int, int], int] = {}
    for _ in range(400):
        for triplet in as_triplets(all_triplet_indices(labels, max_triplets=2)):  # rejection path
            counts[triplet] = counts.get(triplet, 0) + 1
    assert len(counts) == 18
    assert all(20 < count < 75 for count in counts.values())  # expected 400 · 2 / 18 ≈ 44, sd ≈ 6


def test_all_triplets_cap_on_a_large_batch() -> None:
    labels = torch.arange(1024) % 10  # ~9.6e7 triplets: never enumerated
    anchor, positive, negative = AllTripletsMiner(max_triplets=100_000)(torch.zeros(1024, 32), labels)
    assert len(anchor) == 100_000
    assert torch.all(labels[anchor] == labels[positive]) and torch.all(anchor != positive)
    assert torch.all(labels[anchor] != labels[negative])


def test_batch_hard_ties_and_identical_embeddings() -> None:
    """All distances 0: the anchor is never its own positive, and the lowest index wins every tie."""
    labels = torch.tensor([0, 1, 0, 1, 0, 2])
    anchor, positive, negative = HardTripletsMiner()(torch.ones(6, 3), labels)
    assert anchor.tolist() == [0, 1, 2, 3, 4]  # 5 is alone in its class
    assert positive.tolist() == [2, 3, 0, 1, 0] and negative.tolist() == [1, 0, 1, 0, 1]


@pytest.mark.parametrize("distance", DISTANCES)
def test_hard_triplets_miner_matches_its_pure_function(distance: str) -> None:
    """The miner ranks Euclidean distances by their squares (monotone): the same triplets."""
    for seed in range(3):
        embeddings, labels = batch(seed)
        matrix = pairwise_distance(embeddings, distance=distance)
        expected = as_triplets(batch_hard_triplet_indices(matrix, labels))
        assert as_triplets(HardTripletsMiner(distance=distance)(embeddings, labels)) == expected


def test_batch_hard_matches_pml() -> None:
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import BatchHardMiner

    assert pml is not None
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        embeddings = torch.randn(20, 4, generator=generator, dtype=torch.float64)
        labels = torch.randint(4, (20,), generator=generator)
        labels[-1] = 9
        for power, distance in ((1, "euclidean"), (2, "squared_euclidean")):
            reference = BatchHardMiner(distance=LpDistance(normalize_embeddings=False, power=power))
            ours = HardTripletsMiner(distance=distance)(embeddings, labels)
            assert as_triplets(ours) == as_triplets(reference(embeddings, labels))


def test_margin_and_distance_default_and_can_be_filled_later() -> None:
    miner = SemiHardTripletsMiner()
    assert miner.margin is None and miner.distance is None
    embeddings, labels = batch(1)
    squared = pairwise_distance(embeddings, distance="squared_euclidean")
    assert as_triplets(miner(embeddings, labels)) == as_triplets(semihard_triplet_indices(squared, labels, 0.2))
    miner.margin, miner.distance = 3.0, "euclidean"  # what the training pipeline does with the loss's values
    plain = pairwise_distance(embeddings, distance="euclidean")
    assert as_triplets(miner(embeddings, labels)) == as_triplets(semihard_triplet_indices(plain, labels, 3.0))
    pair_miner = HardPairsMiner()
    assert as_pairs(pair_miner(embeddings, labels)) == as_pairs(hard_pair_indices(plain, labels, 1.0))
    triplet_miner = HardTripletsMiner()
    assert as_triplets(triplet_miner(embeddings, labels)) == as_triplets(batch_hard_triplet_indices(squared, labels))


def test_miners_do_not_track_gradients() -> None:
    embeddings, labels = batch(2)
    embeddings.requires_grad_(True)
    for miner in (HardPairsMiner(), HardTripletsMiner(), SemiHardTripletsMiner(), AllTripletsMiner()):
        assert not any(t.requires_grad for t in miner(embeddings, labels))


def test_empty_batch() -> None:
    for miner in (
        AllPairsMiner(),
        HardPairsMiner(),
        HardTripletsMiner(),
        SemiHardTripletsMiner(),
        AllTripletsMiner(),
    ):
        result = miner(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
        assert all(t.numel() == 0 and t.dtype == torch.int64 for t in result)


def test_eager_validation() -> None:
    with pytest.raises(ValueError, match="semihard_triplets: expected `margin` >= 0 or None, got -1"):
        SemiHardTripletsMiner(margin=-1.0)
    with pytest.raises(ValueError, match=r"hard_pairs: unknown `distance` 'cosin'\. Did you mean 'cosine'"):
        HardPairsMiner(distance="cosin")
    with pytest.raises(ValueError, match="all_triplets: expected `max_triplets` >= 1, got 0"):
        AllTripletsMiner(max_triplets=0)
    with pytest.raises(ValueError, match=r"hard_triplets: expected embeddings \(N, D\).*got embeddings \(4,\)"):
        HardTripletsMiner()(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels \(3,\) torch.float32"):
        AllPairsMiner()(torch.zeros(3, 2), torch.zeros(3))


def test_registry_builds_every_miner() -> None:
    for name, kind in [
        ("all_pairs", "pair"),
        ("hard_pairs", "pair"),
        ("all_triplets", "triplet"),
        ("hard_triplets", "triplet"),
        ("semihard_triplets", "triplet"),
    ]:
        assert build_miner(name).tuple_kind == kind


def test_pairs_from_triplets_are_the_distinct_pairs_of_the_triplets() -> None:
    from lossforge.mining.tuples import pairs_from_triplets

    labels = torch.tensor([0, 0, 1, 1, 2, 0])
    triplets = all_triplet_indices(labels)
    a1, p, a2, n = pairs_from_triplets(triplets, len(labels))
    expected_positive = sorted({(int(a), int(q)) for a, q, _ in zip(*triplets, strict=True)})
    expected_negative = sorted({(int(a), int(m)) for a, _, m in zip(*triplets, strict=True)})
    assert list(zip(a1.tolist(), p.tolist(), strict=True)) == expected_positive
    assert list(zip(a2.tolist(), n.tolist(), strict=True)) == expected_negative
    assert all(labels[a] == labels[q] for a, q in expected_positive)
    assert all(labels[a] != labels[m] for a, m in expected_negative)
    empty = pairs_from_triplets(tuple(torch.empty(0, dtype=torch.long) for _ in range(3)), 4)  # type: ignore[arg-type]
    assert [t.numel() for t in empty] == [0, 0, 0, 0]


def test_a_pair_loss_trains_on_the_pairs_of_semihard_triplets() -> None:
    from lossforge.losses.metric import contrastive_loss
    from lossforge.mining.miners import PairsFromTriplets, SemiHardTripletsMiner
    from lossforge.mining.tuples import pairs_from_triplets

    torch.manual_seed(0)
    embeddings, labels = torch.randn(24, 4), torch.randint(0, 4, (24,))
    inner = SemiHardTripletsMiner(margin=0.5)
    pairs = PairsFromTriplets(inner)(embeddings, labels)
    expected = pairs_from_triplets(inner(embeddings, labels), 24)
    assert all(torch.equal(got, want) for got, want in zip(pairs, expected, strict=True))
    assert PairsFromTriplets.tuple_kind == "pair"
    assert torch.isfinite(contrastive_loss(embeddings, labels, pairs, margin=1.0))
