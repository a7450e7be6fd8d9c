"""SupCon, Circle and lifted structure against explicit float64 loops, gradcheck, and PML's implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from lossforge import build_loss, build_miner
from lossforge.losses.base import LossInputError
from lossforge.losses.metric import METRIC_REDUCTIONS
from lossforge.losses.pairwise import (
    CircleLoss,
    LiftedStructureLoss,
    SupConLoss,
    circle_loss,
    lifted_structure_loss,
    pair_masks,
    supcon_loss,
)
from lossforge.mining.distances import DISTANCES

Pair = tuple[int, int]


def batch(seed: int = 0, num: int = 12, dim: int = 3, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num, dim, generator=generator, dtype=torch.float64)
    labels = torch.randint(classes, (num,), generator=generator)
    labels[-1] = classes + 5  # a single-member class: an anchor without positives
    return embeddings, labels


def cosine_similarity(u: torch.Tensor, v: torch.Tensor) -> float:
    u_list, v_list = u.tolist(), v.tolist()
    dot = sum(a * b for a, b in zip(u_list, v_list, strict=True))
    return dot / math.sqrt(sum(a * a for a in u_list) * sum(b * b for b in v_list))


def textbook_distance(u: torch.Tensor, v: torch.Tensor, distance: str) -> float:
    if distance == "cosine":
        return 1.0 - cosine_similarity(u, v)
    squared = sum((a - b) ** 2 for a, b in zip(u.tolist(), v.tolist(), strict=True))
    return squared if distance == "squared_euclidean" else math.sqrt(max(squared, 1e-12))


def all_pairs(labels: list[int]) -> tuple[list[Pair], list[Pair]]:
    indices = range(len(labels))
    positives = [(i, j) for i in indices for j in indices if i != j and labels[i] == labels[j]]
    return positives, [(i, j) for i in indices for j in indices if labels[i] != labels[j]]


def mined_pairs(mined: tuple[torch.Tensor, ...]) -> tuple[list[Pair], list[Pair]]:
    a1, p, a2, n = (t.tolist() for t in mined)
    return sorted(set(zip(a1, p, strict=True))), sorted(set(zip(a2, n, strict=True)))


def reduce_loop(terms: list[float], reduction: str) -> torch.Tensor:
    if reduction == "none":
        return torch.tensor(terms, dtype=torch.float64)
    total = sum(terms)
    if reduction == "sum":
        return torch.tensor(total, dtype=torch.float64)
    count = len(terms) if reduction == "mean" else sum(term > 0 for term in terms)
    return torch.tensor(total / max(count, 1), dtype=torch.float64)


def log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(value - top) for value in values))


def supcon_loop(x: torch.Tensor, positives: list[Pair], negatives: list[Pair], temperature: float) -> list[float]:
    terms = []
    for anchor in range(len(x)):
        own_positives = [j for i, j in positives if i == anchor]
        if not own_positives:
            continue
        others = own_positives + [j for i, j in negatives if i == anchor]
        denominator = log_sum_exp([cosine_similarity(x[anchor], x[j]) / temperature for j in others])
        logs = [cosine_similarity(x[anchor], x[p]) / temperature - denominator for p in own_positives]
        terms.append(-sum(logs) / len(own_positives))
    return terms


def circle_loop(
    x: torch.Tensor, positives: list[Pair], negatives: list[Pair], relaxation: float, scale: float
) -> list[float]:
    terms = []
    for anchor in range(len(x)):
        own_positives = [j for i, j in positives if i == anchor]
        own_negatives = [j for i, j in negatives if i == anchor]
        if not own_positives or not own_negatives:
            continue
        positive_sims = [cosine_similarity(x[anchor], x[j]) for j in own_positives]
        negative_sims = [cosine_similarity(x[anchor], x[j]) for j in own_negatives]
        positive_logits = [-scale * max(1 + relaxation - s, 0) * (s - (1 - relaxation)) for s in positive_sims]
        negative_logits = [scale * max(s + relaxation, 0) * (s - relaxation) for s in negative_sims]
        inner = log_sum_exp(positive_logits) + log_sum_exp(negative_logits)
        terms.append(math.log1p(math.exp(inner)) if inner < 30 else inner + math.log1p(math.exp(-inner)))
    return terms


def lifted_loop(
    x: torch.Tensor, positives: list[Pair], negatives: list[Pair], margin: float, distance: str
) -> list[float]:
    terms = []
    for i, j in positives:  # sorted (i, j)
        exponents = [margin - textbook_distance(x[a], x[k], distance) for a, k in negatives if a in (i, j)]
        if not exponents:
            continue
        structure = log_sum_exp(exponents) + textbook_distance(x[i], x[j], distance)
        terms.append(max(structure, 0.0) ** 2 / 2)
    return terms


# -- values against loops --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("mined", [False, True])
def test_supcon_against_loop(mined: bool, reduction: str) -> None:
    embeddings, labels = batch()
    indices = build_miner("hard_pairs", margin=1.0)(embeddings, labels) if mined else None
    positives, negatives = mined_pairs(indices) if indices else all_pairs(labels.tolist())
    terms = supcon_loop(embeddings, positives, negatives, 0.3)
    loss = SupConLoss(temperature=0.3, reduction=reduction)
    torch.testing.assert_close(loss(embeddings, labels, indices), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(terms) < len(labels)  # the single-member class has no term
    assert int(loss.last_num_active) == sum(term > 0 for term in terms)


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("mined", [False, True])
def test_circle_against_loop(mined: bool, reduction: str) -> None:
    embeddings, labels = batch(1)
    indices = build_miner("hard_pairs", margin=1.0)(embeddings, labels) if mined else None
    positives, negatives = mined_pairs(indices) if indices else all_pairs(labels.tolist())
    terms = circle_loop(embeddings, positives, negatives, 0.25, 16.0)
    loss = CircleLoss(relaxation=0.25, scale=16.0, reduction=reduction)
    torch.testing.assert_close(loss(embeddings, labels, indices), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(terms) > 0


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("distance", DISTANCES)
def test_lifted_structure_against_loop(distance: str, reduction: str) -> None:
    embeddings, labels = batch(2)
    margin = {"euclidean": 1.5, "squared_euclidean": 3.0, "cosine": 0.5}[distance]
    positives, negatives = all_pairs(labels.tolist())
    terms = lifted_loop(embeddings, positives, negatives, margin, distance)
    loss = LiftedStructureLoss(margin=margin, distance=distance, reduction=reduction)
    torch.testing.assert_close(loss(embeddings, labels), reduce_loop(terms, reduction))
    assert int(loss.last_num_tuples) == len(positives) and int(loss.last_num_active) == sum(t > 0 for t in terms)


def test_lifted_structure_mean_is_the_papers_over_unordered_pairs() -> None:
    embeddings, labels = batch(3)
    positives, negatives = all_pairs(labels.tolist())
    unordered = [(i, j) for i, j in positives if i < j]
    paper = sum(max(t, 0) for t in lifted_loop(embeddings, unordered, negatives, 1.0, "euclidean")) / len(unordered)
    assert lifted_structure_loss(embeddings, labels).item() == pytest.approx(paper)  # 1/(2|P|) Σ [J]²₊


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
def test_lifted_structure_with_mined_pairs_and_triplets(reduction: str) -> None:
    embeddings, labels = batch(4, num=16)
    pairs = build_miner("hard_pairs", margin=1.0)(embeddings, labels)
    positives, negatives = mined_pairs(pairs)
    expected = reduce_loop(lifted_loop(embeddings, positives, negatives, 1.0, "euclidean"), reduction)
    torch.testing.assert_close(lifted_structure_loss(embeddings, labels, pairs, reduction=reduction), expected)
    triplets = build_miner("semihard_triplets", margin=2.0, distance="euclidean")(embeddings, labels)
    a, p, n = (t.tolist() for t in triplets)
    positives, negatives = sorted(set(zip(a, p, strict=True))), sorted(set(zip(a, n, strict=True)))
    expected = reduce_loop(lifted_loop(embeddings, positives, negatives, 1.0, "euclidean"), reduction)
    torch.testing.assert_close(lifted_structure_loss(embeddings, labels, triplets, reduction=reduction), expected)


def test_pair_masks_from_triplets_and_duplicates() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    triplets = (torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0]), torch.tensor([2, 3, 2]))
    positive, negative = pair_masks(labels, triplets)
    assert positive.nonzero().tolist() == [[0, 1], [1, 0]]  # (0, 1) listed twice, counted once
    assert negative.nonzero().tolist() == [[0, 2], [0, 3], [1, 2]]


# -- against pytorch-metric-learning ---------------------------------------------------------------


def pml_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(32, 8, generator=generator, dtype=torch.float64), torch.arange(32) % 4


@pytest.mark.parametrize("seed", [0, 1])
def test_supcon_matches_pml(seed: int) -> None:
    embeddings, labels = pml_batch(seed)
    mined = pml_miners.PairMarginMiner(pos_margin=0.2, neg_margin=0.8)(embeddings, labels)
    reference = pml_losses.SupConLoss(temperature=0.1)
    for indices in (None, mined):
        ours = supcon_loss(embeddings, labels, indices, temperature=0.1, reduction="mean_nonzero")
        torch.testing.assert_close(ours, reference(embeddings, labels, indices), msg="PML SupConLoss differs")


@pytest.mark.parametrize("seed", [0, 1])
def test_circle_matches_pml(seed: int) -> None:
    embeddings, labels = pml_batch(seed)
    mined = pml_miners.PairMarginMiner(pos_margin=0.2, neg_margin=0.8)(embeddings, labels)
    reference = pml_losses.CircleLoss(m=0.4, gamma=80)
    for indices in (None, mined):
        ours = circle_loss(embeddings, labels, indices, relaxation=0.4, scale=80.0, reduction="mean_nonzero")
        torch.testing.assert_close(ours, reference(embeddings, labels, indices), msg="PML CircleLoss differs")


@pytest.mark.parametrize("seed", [0, 1])
def test_lifted_structure_matches_pml_on_normalised_embeddings(seed: int) -> None:
    """PML normalises inside its distance; every positive pair here has negatives at both ends."""
    embeddings, labels = pml_batch(seed)
    reference = pml_losses.LiftedStructureLoss(neg_margin=1, pos_margin=0)
    ours = lifted_structure_loss(F.normalize(embeddings, dim=1), labels, margin=1.0, reduction="mean_nonzero")
    torch.testing.assert_close(ours, reference(embeddings, labels), msg="PML LiftedStructureLoss differs")


def test_lifted_structure_differs_from_pml_only_for_pairs_without_negatives() -> None:
    """The documented difference: PML scores a positive pair with no negative at either end [d]²₊/2."""
    embeddings, labels = pml_batch(2)
    a1, p = torch.tensor([0, 4, 8]), torch.tensor([4, 0, 12])  # labels 0, 0, 0
    a2, n = torch.tensor([0, 0]), torch.tensor([1, 2])  # only sample 0 has negatives: (8, 12) has none
    pml = pml_losses.LiftedStructureLoss()(embeddings, labels, (a1, p, a2, n))
    unit = F.normalize(embeddings, dim=1)
    ours = lifted_structure_loss(unit, labels, (a1, p, a2, n), reduction="none")
    assert ours.shape == (2,)  # (0, 4) and (4, 0)
    lonely = (unit[8] - unit[12]).norm().pow(2) / 2
    terms = torch.cat([ours, lonely[None]])
    torch.testing.assert_close(pml, terms[terms > 0].mean())


# -- gradients and degenerate batches --------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "mean_nonzero", "none"])
def test_gradcheck(reduction: str) -> None:
    embeddings, labels = batch(5, num=8, classes=2)
    embeddings.requires_grad_(True)
    pairs = build_miner("hard_pairs", margin=1.0)(embeddings, labels)
    checks = [
        lambda x: supcon_loss(x, labels, temperature=0.5, reduction=reduction),
        lambda x: supcon_loss(x, labels, pairs, temperature=0.5, reduction=reduction),
        lambda x: lifted_structure_loss(x, labels, margin=3.0, reduction=reduction),
        lambda x: lifted_structure_loss(x, labels, pairs, margin=3.0, reduction=reduction),
    ]
    for function in checks:
        assert torch.autograd.gradcheck(function, embeddings)


def circle_autograd_loop(x: torch.Tensor, labels: list[int], relaxation: float, scale: float) -> torch.Tensor:
    """Circle loss anchor by anchor with scalar tensors; the weights alpha detached, as the paper says."""
    unit = x / x.norm(dim=1, keepdim=True)
    terms = []
    for anchor in range(len(labels)):
        positive_logits, negative_logits = [], []
        for other in range(len(labels)):
            if other == anchor:
                continue
            s = (unit[anchor] * unit[other]).sum()
            if labels[other] == labels[anchor]:
                alpha = (1 + relaxation - s.detach()).clamp_min(0)
                positive_logits.append(-scale * alpha * (s - (1 - relaxation)))
            else:
                alpha = (s.detach() + relaxation).clamp_min(0)
                negative_logits.append(scale * alpha * (s - relaxation))
        if positive_logits and negative_logits:
            inner = torch.stack(positive_logits).logsumexp(0) + torch.stack(negative_logits).logsumexp(0)
            terms.append(F.softplus(inner))
    return torch.stack(terms).mean()


def test_circle_gradient_holds_alpha_constant() -> None:
    """Circle's gradient is not the derivative of its value (alpha is held constant), so no gradcheck: the
    gradient is compared with autograd through an explicit loop instead, and differs from finite ones."""
    embeddings, labels = batch(5, num=8, classes=2)
    ours = torch.autograd.grad(circle_loss(embeddings.requires_grad_(True), labels, scale=4.0), embeddings)[0]
    reference = torch.autograd.grad(circle_autograd_loop(embeddings, labels.tolist(), 0.4, 4.0), embeddings)[0]
    torch.testing.assert_close(ours, reference)
    assert not torch.autograd.gradcheck(lambda x: circle_loss(x, labels, scale=4.0), embeddings, raise_exception=False)


LOSSES = [SupConLoss, CircleLoss, LiftedStructureLoss]


@pytest.mark.parametrize("reduction", METRIC_REDUCTIONS)
@pytest.mark.parametrize("labels", [torch.tensor([3]), torch.tensor([1, 1, 1, 1]), torch.tensor([0, 1, 2, 3])])
@pytest.mark.parametrize("loss_class", LOSSES)
def test_batches_without_a_term_give_zero_that_backpropagates(
    loss_class: type, labels: torch.Tensor, reduction: str
) -> None:
    loss = loss_class(reduction=reduction)
    embeddings = torch.randn(len(labels), 3, requires_grad=True)
    value = loss(embeddings, labels)
    if loss_class is SupConLoss and len(set(labels.tolist())) < len(labels):
        assert value.sum() > 0  # one class: SupCon still has positives (its denominator holds them)
    else:
        if reduction == "none":
            assert value.shape == (0,)
        assert value.sum().item() == 0.0 and int(loss.last_num_tuples) == 0
    value.sum().backward()
    assert torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize("loss_class", LOSSES)
def test_identical_embeddings_have_finite_gradients(loss_class: type) -> None:
    embeddings = torch.ones(6, 4, requires_grad=True)
    value = loss_class()(embeddings, torch.tensor([0, 0, 1, 1, 2, 2]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(embeddings.grad).all()


def test_large_scale_stays_finite_in_float32() -> None:
    embeddings, labels = batch(6, num=64, dim=16, classes=4)
    embeddings = embeddings.float().requires_grad_(True)
    for loss in (CircleLoss(scale=1024.0), SupConLoss(temperature=0.01)):
        value = loss(embeddings, labels)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(embeddings.grad).all()


# -- errors and the registry -----------------------------------------------------------------------


@pytest.mark.parametrize("loss_class", LOSSES)
def test_bad_inputs_name_the_loss(loss_class: type) -> None:
    name = loss_class.name
    with pytest.raises(LossInputError, match=rf"^{name}: expected embeddings \(N, D\).*got embeddings \(4,\)"):
        loss_class()(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(LossInputError, match=rf"^{name}: expected 1-D integer index tensors"):
        loss_class()(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), (torch.zeros(2),) * 4)
    with pytest.raises(ValueError, match=rf"^{name}: expected `reduction` in .*'mean_nonzero'.*got 'max'"):
        loss_class(reduction="max")


def test_constructors_validate_eagerly() -> None:
    with pytest.raises(ValueError, match=r"^supcon: expected `temperature` > 0, got 0"):
        SupConLoss(temperature=0)
    with pytest.raises(ValueError, match=r"^circle: expected `relaxation` in \[0, 1\), got 1.5"):
        CircleLoss(relaxation=1.5)
    with pytest.raises(ValueError, match=r"^circle: expected `scale` > 0, got -1"):
        CircleLoss(scale=-1)
    with pytest.raises(ValueError, match=r"^lifted_structure: unknown `distance` 'euclidian'"):
        LiftedStructureLoss(distance="euclidian")
    with pytest.raises(ValueError, match=r"^lifted_structure: expected a finite `margin`, got inf"):
        LiftedStructureLoss(margin=math.inf)


def test_registry() -> None:
    supcon, circle, lifted = build_loss("supcon"), build_loss("circle"), build_loss("lifted_structure")
    assert all(loss.tasks == ("metric",) and loss.tuple_kind == "pair" for loss in (supcon, circle, lifted))
    assert (supcon.distance, circle.distance, lifted.distance) == ("cosine", "cosine", "euclidean")
    assert (supcon.temperature, circle.relaxation, circle.scale, lifted.margin) == (0.1, 0.4, 80.0, 1.0)
    embeddings, labels = batch()
    pairs = build_miner("hard_pairs")(embeddings, labels)
    assert torch.isfinite(build_loss("circle", reduction="mean_nonzero")(embeddings, labels, pairs))
