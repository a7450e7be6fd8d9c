"""Contrastive and triplet losses against explicit loops, for every reduction, distance and miner."""

from __future__ import annotations

import math
import time

import pytest
import torch

from lossforge import build_loss, build_miner
from lossforge.losses.base import LossInputError
from lossforge.losses.metric import (
    METRIC_REDUCTIONS,
    ContrastiveLoss,
    TripletLoss,
    contrastive_loss,
    triplet_loss,
)
from lossforge.mining.distances import DISTANCES

Triplet = tuple[int, int, int]
Pair = tuple[int, int]


def textbook_distance(u: torch.Tensor, v: torch.Tensor, distance: str) -> float:
    u_list, v_list = u.tolist(), v.tolist()
    if distance == "cosine":
        dot = sum(a * b for a, b in zip(u_list, v_list, strict=True))
        return 1.0 - dot / math.sqrt(sum(a * a for a in u_list) * sum(b * b for b in v_list))
    squared = sum((a - b) ** 2 for a, b in zip(u_list, v_list, strict=True))
    # lossforge's documented Euclidean distance: the sqrt is clamped at 1e-6 (finite gradients at 0)
    return squared if distance == "squared_euclidean" else math.sqrt(max(squared, 1e-12))


def reduce_loop(terms: list[float], reduction: str) -> torch.Tensor:
    if reduction == "none":
        return torch.tensor(terms, dtype=torch.float64)
    total = sum(terms)
    if reduction == "sum":
        return torch.tensor(total, dtype=torch.float64)
    count = len(terms) if reduction == "mean" else sum(term > 0 for term in terms)
    return torch.tensor(total / max(count, 1), dtype=torch.float64)


def contrastive_loop(
    x: torch.Tensor, positives: list[Pair], negatives: list[Pair], margin: float, distance: str
) -> list[float]:
    terms = [textbook_distance(x[i], x[j], distance) ** 2 for i, j in positives]
    return terms + [max(margin - textbook_distance(x[i], x[j], distance), 0.0) ** 2 for i, j in negatives]


def triplet_loop(x: torch.Tensor, triplets: list[Triplet], margin: float, distance: str) -> list[float]:
    return [
        max(margin + textbook_distance(x[a], x[p], distance) - textbook_distance(x[a], x[n], distance), 0.0)
        for a, p, n in triplets
    ]


def all_pairs(labels: list[int]) -> tuple[list[Pair], list[Pair]]:
    indices = range(len(labels))
    positives = [(i, j) for i in indices for j in indices if i != j and labels[i] == labels[j]]
    return positives, [(i, j) for i in indices for j in indices if labels[i] != labels[j]]


def all_triplets(labels: list[int]) -> list[Triplet]:
    positives, negatives = all_pairs(labels)
    return [(a, p, n) for a, p in positives for a2, n in negatives if a2 == a]


def batch(seed: int = 0, num: int = 12, dim: int = 3, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num, dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(classes, (num,), generator=generator)
    labels[-1] = classes + 5  # a single-member class: negatives only
    return embeddings, labels


def to_list(result: tuple[torch.Tensor, ...]) -> list[tuple[int, ...]]:
    return list(zip(*(t.tolist() for t in result), strict=True))


# -- values against loops --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("distance", DISTANCES)
def test_contrastive_all_pairs(distance: str, reduction: str) -> None:
    embeddings, labels = batch()
    margin = {"euclidean": 1.5, "squared_euclidean": 2.0, "cosine": 0.8}[distance]
    loss = ContrastiveLoss(margin=margin, distance=distance, reduction=reduction)
    positives, negatives = all_pairs(labels.tolist())
    terms = contrastive_loop(embeddings, positives, negatives, margin, distance)
    torch.testing.assert_close(loss(embeddings, labels), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(terms) and int(loss.last_num_active) == sum(t > 0 for t in terms)
    assert 0 < int(loss.last_num_active) < len(terms)  # both sides of the hinge are exercised


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("distance", DISTANCES)
def test_triplet_all_triplets(distance: str, reduction: str) -> None:
    embeddings, labels = batch()
    margin = {"euclidean": 0.5, "squared_euclidean": 1.0, "cosine": 0.3}[distance]
    loss = TripletLoss(margin=margin, distance=distance, reduction=reduction)
    terms = triplet_loop(embeddings, all_triplets(labels.tolist()), margin, distance)
    torch.testing.assert_close(loss(embeddings, labels), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(terms) and int(loss.last_num_active) == sum(t > 0 for t in terms)
    assert 0 < int(loss.last_num_active) < len(terms)


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("miner_name", ["all_pairs", "hard_pairs"])
def test_contrastive_with_mined_pairs(miner_name: str, reduction: str) -> None:
    embeddings, labels = batch(1)
    loss = ContrastiveLoss(margin=1.5, reduction=reduction)
    mined = build_miner(miner_name, **({"margin": 1.5} if miner_name == "hard_pairs" else {}))(embeddings, labels)
    a1, p, a2, n = (t.tolist() for t in mined)
    terms = contrastive_loop(embeddings, list(zip(a1, p, strict=True)), list(zip(a2, n, strict=True)), 1.5, "euclidean")
    torch.testing.assert_close(loss(embeddings, labels, mined), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(terms)


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
def test_contrastive_with_triplets_uses_their_distinct_pairs(reduction: str) -> None:
    embeddings, labels = batch(2)
    triplets = build_miner("all_triplets")(embeddings, labels)  # every (a, p) pair repeats per negative
    listed = to_list(triplets)
    positives = sorted({(a, p) for a, p, _ in listed})
    negatives = sorted({(a, n) for a, _, n in listed})
    terms = contrastive_loop(embeddings, positives, negatives, 1.0, "euclidean")
    torch.testing.assert_close(
        contrastive_loss(embeddings, labels, triplets, reduction=reduction), reduce_loop(terms, reduction)
    )


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("miner_name", ["all_triplets", "hard_triplets", "semihard_triplets"])
def test_triplet_with_mined_triplets(miner_name: str, distance: str, reduction: str) -> None:
    embeddings, labels = batch(3, num=16)
    margin = 0.3 if distance == "cosine" else 0.8
    miner = build_miner(miner_name)
    if hasattr(miner, "distance"):
        miner.distance = distance
    if hasattr(miner, "margin"):
        miner.margin = margin
    mined = miner(embeddings, labels)
    assert len(mined[0]) > 0
    loss = TripletLoss(margin=margin, distance=distance, reduction=reduction)
    terms = triplet_loop(embeddings, to_list(mined), margin, distance)
    torch.testing.assert_close(loss(embeddings, labels, mined), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(terms) and int(loss.last_num_active) == sum(t > 0 for t in terms)


def pos_neg_mean_loop(positive_terms: list[float], negative_terms: list[float]) -> torch.Tensor:
    """PML's pair reduction: the mean over non-zero positive terms plus the mean over non-zero negative ones."""
    means = [sum(terms) / max(sum(term > 0 for term in terms), 1) for terms in (positive_terms, negative_terms)]
    return torch.tensor(sum(means), dtype=torch.float64)


@pytest.mark.parametrize("miner_name", [None, "hard_pairs", "all_triplets"])
@pytest.mark.parametrize("distance", DISTANCES)
def test_contrastive_pos_neg_mean_against_loop(distance: str, miner_name: str | None) -> None:
    embeddings, labels = batch(4)
    margin = {"euclidean": 1.5, "squared_euclidean": 2.0, "cosine": 0.8}[distance]
    mined = None if miner_name is None else build_miner(miner_name)(embeddings, labels)
    if mined is None:
        positives, negatives = all_pairs(labels.tolist())
    elif len(mined) == 4:
        positives, negatives = list(zip(*mined[:2], strict=True)), list(zip(*mined[2:], strict=True))
    else:
        positives, negatives = (
            sorted({(a, p) for a, p, _ in to_list(mined)}),
            sorted({(a, n) for a, _, n in to_list(mined)}),
        )
    positive_terms = contrastive_loop(embeddings, positives, [], margin, distance)
    negative_terms = contrastive_loop(embeddings, [], negatives, margin, distance)
    loss = ContrastiveLoss(margin=margin, distance=distance, reduction="pos_neg_mean")
    torch.testing.assert_close(loss(embeddings, labels, mined), pos_neg_mean_loop(positive_terms, negative_terms))
    assert int(loss.last_num_tuples) == len(positives) + len(negatives)
    assert int(loss.last_num_active) == sum(t > 0 for t in positive_terms + negative_terms)
    assert 0 < sum(t > 0 for t in negative_terms) < len(negatives)  # the hinge is exercised


def test_contrastive_pos_neg_mean_matches_pml() -> None:
    """PML's ContrastiveLoss reduces positive and negative pairs separately (AvgNonZeroReducer each) and adds
    the two. Its per-pair terms are the unsquared hinges, so its `pos_calc`/`neg_calc` are given
    lossforge's squared terms here: what is compared is the reduction."""
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners
    from pytorch_metric_learning.distances import LpDistance

    class SquaredTermsContrastive(pml_losses.ContrastiveLoss):  # type: ignore[misc]
        def pos_calc(self, distances: torch.Tensor, margin: float) -> torch.Tensor:
            return distances.pow(2)

        def neg_calc(self, distances: torch.Tensor, margin: float) -> torch.Tensor:
            return torch.relu(margin - distances).pow(2)

    distance = LpDistance(normalize_embeddings=False)
    pml = SquaredTermsContrastive(pos_margin=0.0, neg_margin=2.0, distance=distance)
    embeddings, labels = batch(5, num=24)
    mined = pml_miners.PairMarginMiner(pos_margin=1.0, neg_margin=1.5, distance=distance)(embeddings, labels)
    for indices in (None, mined):
        ours = contrastive_loss(embeddings, labels, indices, margin=2.0, reduction="pos_neg_mean")
        torch.testing.assert_close(ours, pml(embeddings, labels, indices), msg="PML's pair reduction differs")
        mean_nonzero = contrastive_loss(embeddings, labels, indices, margin=2.0, reduction="mean_nonzero")
        assert abs(mean_nonzero.item() - ours.item()) > 0.1  # the reduction the docstring used to call PML's


def test_pos_neg_mean_is_only_for_pairs() -> None:
    with pytest.raises(ValueError, match=r"^triplet: expected `reduction` in .*got 'pos_neg_mean'"):
        TripletLoss(reduction="pos_neg_mean")


def test_none_order_is_positive_pairs_then_negative_pairs() -> None:
    embeddings = torch.tensor([[0.0], [0.5], [1.0]])
    values = contrastive_loss(embeddings, torch.tensor([0, 0, 1]), reduction="none")
    # positives (0,1), (1,0); negatives (0,2), (1,2), (2,0), (2,1)
    torch.testing.assert_close(values, torch.tensor([0.25, 0.25, 0.0, 0.25, 0.0, 0.25]))


def test_all_triplet_mean_on_a_large_batch_without_cubic_memory() -> None:
    """N = 1024 in 10 classes has ~9.6e7 triplets; the loss never builds them (O(N²) memory)."""
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(1024, 32, generator=generator, requires_grad=True)
    labels = torch.arange(1024) % 10
    loss = TripletLoss(margin=8.0)
    largest_saved = 0

    def note_size(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal largest_saved
        largest_saved = max(largest_saved, tensor.numel())
        return tensor

    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(note_size, lambda tensor: tensor):
        value = loss(embeddings, labels)
    value.backward()
    elapsed = time.perf_counter() - start
    assert largest_saved <= 1024 * 1024  # autograd keeps nothing bigger than the distance matrix
    assert torch.isfinite(embeddings.grad).all() and elapsed < 10
    # Reference in float64, one class at a time: its (anchors, positives, negatives) hinge tensor.
    x = embeddings.detach().double()
    squared = torch.cdist(x, x).pow(2)
    total, active = 0.0, 0
    for label in range(10):
        members, others = labels == label, labels != label
        positive = squared[members][:, members]  # (M, M)
        negative = squared[members][:, others]  # (M, Q)
        hinge = (8.0 + positive[:, :, None] - negative[:, None, :]).clamp_min(0)  # (M, M, Q)
        hinge *= 1.0 - torch.eye(len(positive), dtype=hinge.dtype)[:, :, None]  # a == p is no triplet
        total, active = total + hinge.sum().item(), active + int((hinge > 0).sum())
    sizes = [int((labels == c).sum()) for c in range(10)]  # 103 or 102 members
    assert int(loss.last_num_tuples) == sum(size * (size - 1) * (1024 - size) for size in sizes)
    assert abs(int(loss.last_num_active) - active) <= 1e-4 * active  # float32 vs float64 at the kinks
    assert value.item() == pytest.approx(total / int(loss.last_num_tuples), rel=1e-4)


# -- gradients -------------------------------------------------------------------------------------


def jittered_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings whose hinges all sit clearly away from 0, so finite differences see no kink."""
    for seed in range(100):
        embeddings, labels = batch(seed, num=8, dim=3, classes=2)
        d = torch.cdist(embeddings, embeddings)
        gaps = [abs(0.7 + d[a, p] ** 2 - d[a, n] ** 2) for a, p, n in all_triplets(labels.tolist())]
        gaps += [abs(1.2 - d[i, j]) for i, j in all_pairs(labels.tolist())[1]]
        if min(gaps) > 1e-2:
            return embeddings.requires_grad_(True), labels
    raise AssertionError("no seed gives a batch without near-kinks")


@pytest.mark.parametrize("reduction", ["mean", "sum", "mean_nonzero"])
def test_gradcheck(reduction: str) -> None:
    embeddings, labels = jittered_batch()
    mined = build_miner("semihard_triplets", margin=5.0)(embeddings, labels)
    assert torch.autograd.gradcheck(lambda x: triplet_loss(x, labels, margin=0.7, reduction=reduction), embeddings)
    assert torch.autograd.gradcheck(
        lambda x: triplet_loss(x, labels, mined, margin=0.7, reduction=reduction), embeddings
    )
    assert torch.autograd.gradcheck(lambda x: contrastive_loss(x, labels, margin=1.2, reduction=reduction), embeddings)
    assert torch.autograd.gradcheck(lambda x: contrastive_loss(x, labels, margin=1.2, reduction="none"), embeddings)


@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_embeddings_have_finite_gradients(distance: str) -> None:
    labels = torch.tensor([0, 0, 1, 1, 2])
    for loss in (ContrastiveLoss(distance=distance), TripletLoss(distance=distance)):
        for indices in (None, build_miner("all_triplets")(torch.zeros(5, 4), labels)):
            embeddings = torch.ones(5, 4, requires_grad=True)
            value = loss(embeddings, labels, indices)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("labels", [torch.tensor([3]), torch.tensor([1, 1, 1, 1]), torch.tensor([0, 1, 2, 3])])
def test_no_valid_tuple_gives_zero_that_backpropagates(labels: torch.Tensor, reduction: str) -> None:
    triplet_miner, pair_miner = build_miner("hard_triplets"), build_miner("hard_pairs")
    cases = [(TripletLoss(reduction=reduction), None), (TripletLoss(reduction=reduction), triplet_miner)]
    if len(labels) == 1:  # a single sample has no pair at all
        cases += [
            (ContrastiveLoss(reduction=reduction), None),
            (ContrastiveLoss(reduction=reduction), pair_miner),
        ]
    for loss, miner in cases:
        embeddings = torch.randn(len(labels), 3, requires_grad=True)
        value = loss(embeddings, labels, None if miner is None else miner(embeddings, labels))
        if reduction == "none":
            assert value.shape == (0,)
            value = value.sum()
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert torch.all(embeddings.grad == 0)
        assert int(loss.last_num_tuples) == 0 and int(loss.last_num_active) == 0


def test_counters_are_detached_int64_scalars() -> None:
    embeddings, labels = batch()
    embeddings.requires_grad_(True)
    for loss in (ContrastiveLoss(), TripletLoss()):
        assert int(loss.last_num_tuples) == 0  # defined before the first forward
        loss(embeddings, labels)
        for counter in (loss.last_num_tuples, loss.last_num_active):
            assert counter.dtype == torch.int64 and counter.dim() == 0 and not counter.requires_grad


# -- errors and the contract -----------------------------------------------------------------------


def test_triplet_refuses_pairs() -> None:
    embeddings, labels = batch()
    pairs = build_miner("all_pairs")(embeddings, labels)
    with pytest.raises(LossInputError, match=r"triplet: expected triplets.*got 4 tensors"):
        TripletLoss()(embeddings, labels, pairs)


@pytest.mark.parametrize("loss_class", [ContrastiveLoss, TripletLoss])
def test_bad_inputs_name_the_loss_and_the_shapes(loss_class: type) -> None:
    loss = loss_class()
    name = loss_class.name
    with pytest.raises(LossInputError, match=rf"^{name}: expected embeddings \(N, D\).*got embeddings \(4,\)"):
        loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(LossInputError, match=r"labels \(4,\) torch.float32"):
        loss(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(LossInputError, match=r"embeddings \(4, 2\) torch.float32 and labels \(3,\)"):
        loss(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    uneven = (torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([2, 3]))
    with pytest.raises(LossInputError, match=r"matching lengths.*\[2, 1, 2\]"):
        loss(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), uneven)
    with pytest.raises(LossInputError, match="1-D integer index tensors"):
        loss(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), (torch.zeros(2),) * 3)


@pytest.mark.parametrize("loss_class", [ContrastiveLoss, TripletLoss])
def test_constructor_validates_eagerly(loss_class: type) -> None:
    name = loss_class.name
    with pytest.raises(ValueError, match=rf"^{name}: expected `margin` >= 0, got -0.5"):
        loss_class(margin=-0.5)
    with pytest.raises(ValueError, match=rf"^{name}: unknown `distance` 'euclidian'\. Did you mean 'euclidean'"):
        loss_class(distance="euclidian")
    with pytest.raises(ValueError, match=rf"^{name}: expected `reduction` in .*'mean_nonzero'.*got 'max'"):
        loss_class(reduction="max")


def test_registry_contract() -> None:
    contrastive, triplet = build_loss("contrastive"), build_loss("triplet")
    assert (contrastive.tasks, contrastive.tuple_kind, contrastive.margin) == (("metric",), "pair", 1.0)
    assert (triplet.tasks, triplet.tuple_kind, triplet.margin) == (("metric",), "triplet", 0.2)
    assert (contrastive.distance, triplet.distance) == ("euclidean", "squared_euclidean")
    assert build_loss("triplet", reduction="mean_nonzero").reduction == "mean_nonzero"
