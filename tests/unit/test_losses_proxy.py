"""The proxy and classifier-based metric losses against explicit float64 loops and against
pytorch-metric-learning's same losses, their learnable proxies, and the errors they teach with."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from lossforge import build_loss
from lossforge.contract import loss_parameters, loss_traits, prepare_loss
from lossforge.losses.base import LossInputError
from lossforge.losses.proxy import (
    ArcFaceLoss,
    CosFaceLoss,
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    arcface_loss,
    cosface_loss,
    normalized_softmax_loss,
    proxy_anchor_loss,
    proxy_nca_loss,
)

NAMES = ("arcface", "cosface", "normalized_softmax", "proxy_nca", "proxy_anchor")
CLASSES = {
    "arcface": ArcFaceLoss,
    "cosface": CosFaceLoss,
    "normalized_softmax": NormalizedSoftmaxLoss,
    "proxy_nca": ProxyNCALoss,
    "proxy_anchor": ProxyAnchorLoss,
}


def batch(n: int = 7, c: int = 4, d: int = 5, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """float64 embeddings (n, d), labels (n,) covering some classes twice, proxies (c, d)."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, d, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 1][:n])
    proxies = torch.randn(c, d, generator=generator, dtype=torch.float64)
    return embeddings, labels, proxies


# -- explicit loops, from the papers' formulas ---------------------------------------------------------


def cosine(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def softmax_nll(logits: list[float], target: int) -> float:
    top = max(logits)
    return -(logits[target] - top - math.log(sum(math.exp(z - top) for z in logits)))


def arcface_loop(x: Tensor, y: Tensor, p: Tensor, margin: float, scale: float) -> list[float]:
    terms = []
    for i in range(len(y)):
        cosines = [cosine(x[i].tolist(), p[c].tolist()) for c in range(len(p))]
        theta = math.acos(cosines[int(y[i])])
        if theta <= math.pi - margin:
            cosines[int(y[i])] = math.cos(theta + margin)
        else:
            cosines[int(y[i])] -= margin * math.sin(margin)
        terms.append(softmax_nll([scale * c for c in cosines], int(y[i])))
    return terms


def cosface_loop(x: Tensor, y: Tensor, p: Tensor, margin: float, scale: float) -> list[float]:
    terms = []
    for i in range(len(y)):
        logits = [scale * (cosine(x[i].tolist(), p[c].tolist()) - (margin if c == y[i] else 0)) for c in range(len(p))]
        terms.append(softmax_nll(logits, int(y[i])))
    return terms


def normalized_softmax_loop(x: Tensor, y: Tensor, p: Tensor, temperature: float) -> list[float]:
    return [
        softmax_nll([cosine(x[i].tolist(), p[c].tolist()) / temperature for c in range(len(p))], int(y[i]))
        for i in range(len(y))
    ]


def proxy_nca_loop(x: Tensor, y: Tensor, p: Tensor, softmax_scale: float) -> list[float]:
    terms = []
    for i in range(len(y)):
        xi = [a / math.sqrt(sum(b * b for b in x[i].tolist())) for a in x[i].tolist()]
        logits = []
        for c in range(len(p)):
            pc = [a / math.sqrt(sum(b * b for b in p[c].tolist())) for a in p[c].tolist()]
            logits.append(-softmax_scale * sum((a - b) ** 2 for a, b in zip(xi, pc, strict=True)))
        terms.append(softmax_nll(logits, int(y[i])))
    return terms


def proxy_anchor_loop(x: Tensor, y: Tensor, p: Tensor, margin: float, alpha: float) -> float:
    """The paper's equation (4), one proxy at a time."""
    labels = y.tolist()
    pull, push, with_positives = 0.0, 0.0, 0
    for c in range(len(p)):
        s = [cosine(x[i].tolist(), p[c].tolist()) for i in range(len(labels))]
        positives = [s[i] for i in range(len(labels)) if labels[i] == c]
        negatives = [s[i] for i in range(len(labels)) if labels[i] != c]
        if positives:
            with_positives += 1
            pull += math.log(1 + sum(math.exp(-alpha * (v - margin)) for v in positives))
        push += math.log(1 + sum(math.exp(alpha * (v + margin)) for v in negatives))
    return pull / with_positives + push / len(p)


LOOPS: dict[str, tuple[Callable[..., Tensor], Callable[..., Any], dict[str, float]]] = {
    "arcface": (arcface_loss, arcface_loop, {"margin": 0.5, "scale": 8.0}),
    "cosface": (cosface_loss, cosface_loop, {"margin": 0.35, "scale": 8.0}),
    "normalized_softmax": (normalized_softmax_loss, normalized_softmax_loop, {"temperature": 0.3}),
    "proxy_nca": (proxy_nca_loss, proxy_nca_loop, {"softmax_scale": 3.0}),
}


@pytest.mark.parametrize("name", sorted(LOOPS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_per_sample_losses_match_the_loop(name: str, reduction: str) -> None:
    function, loop, options = LOOPS[name]
    embeddings, labels, proxies = batch()
    terms = torch.tensor(loop(embeddings, labels, proxies, **options), dtype=torch.float64)
    expected = {"mean": terms.mean(), "sum": terms.sum(), "none": terms}[reduction]
    torch.testing.assert_close(function(embeddings, labels, proxies, reduction=reduction, **options), expected)


def test_arcface_past_pi_minus_margin_uses_the_monotone_fallback() -> None:
    # The true class's proxy points away from the embedding (θ ≈ π), where cos(θ + m) would rise again.
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    proxies = torch.tensor([[-1.0, 0.01], [0.3, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    expected = torch.tensor(arcface_loop(embeddings, labels, proxies, 0.5, 4.0), dtype=torch.float64)
    ours = arcface_loss(embeddings, labels, proxies, margin=0.5, scale=4.0, reduction="none")
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize(("margin", "alpha"), [(0.1, 32.0), (0.0, 4.0), (0.3, 10.0)])
def test_proxy_anchor_matches_the_loop(margin: float, alpha: float) -> None:
    embeddings, labels, proxies = batch()  # class 3 has no sample: it only pushes
    expected = torch.tensor(proxy_anchor_loop(embeddings, labels, proxies, margin, alpha), dtype=torch.float64)
    ours = proxy_anchor_loss(embeddings, labels, proxies, margin=margin, alpha=alpha)
    torch.testing.assert_close(ours, expected)
    per_proxy = proxy_anchor_loss(embeddings, labels, proxies, margin=margin, alpha=alpha, reduction="none")
    assert per_proxy.shape == (4,)
    torch.testing.assert_close(per_proxy.mean(), expected)
    total = proxy_anchor_loss(embeddings, labels, proxies, margin=margin, alpha=alpha, reduction="sum")
    torch.testing.assert_close(total, 4 * expected)  # "sum" adds the 4 proxies' terms


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name: str) -> None:
    embeddings, labels, proxies = batch(n=5, c=3, d=3, seed=1)
    options = {"arcface": {"scale": 4.0}, "cosface": {"scale": 4.0}, "proxy_anchor": {"alpha": 4.0}}.get(name, {})
    function = {**{key: value[0] for key, value in LOOPS.items()}, "proxy_anchor": proxy_anchor_loss}[name]

    def loss(x: Tensor, p: Tensor) -> Tensor:
        return function(x, labels, p, **options)

    assert torch.autograd.gradcheck(loss, (embeddings.requires_grad_(True), proxies.requires_grad_(True)))


# -- against pytorch-metric-learning ------------------------------------------------------------------


def _pml(name: str, num_classes: int, dim: int) -> tuple[nn.Module, dict[str, float]]:
    from pytorch_metric_learning import losses

    if name == "arcface":  # PML's margin is in degrees
        return losses.ArcFaceLoss(num_classes, dim, margin=math.degrees(0.5), scale=16.0), {
            "margin": 0.5,
            "scale": 16.0,
        }
    if name == "cosface":
        return losses.CosFaceLoss(num_classes, dim, margin=0.35, scale=16.0), {"margin": 0.35, "scale": 16.0}
    if name == "normalized_softmax":
        return losses.NormalizedSoftmaxLoss(num_classes, dim, temperature=0.1), {"temperature": 0.1}
    if name == "proxy_nca":
        return losses.ProxyNCALoss(num_classes, dim, softmax_scale=2.0), {"softmax_scale": 2.0}
    return losses.ProxyAnchorLoss(num_classes, dim, margin=0.1, alpha=32.0), {"margin": 0.1, "alpha": 32.0}


@pytest.mark.parametrize("name", NAMES)
def test_matches_pml_on_the_same_proxies(name: str) -> None:
    embeddings, labels, proxies = batch(n=7, c=4, d=5, seed=2)
    pml, options = _pml(name, 4, 5)
    with torch.no_grad():  # PML keeps W as (D, C) for the classifier losses, proxies as (C, D)
        weight = pml.W if hasattr(pml, "W") else pml.proxies
        weight.data = (proxies.T if hasattr(pml, "W") else proxies).clone()
    ours = CLASSES[name](**options, num_classes=4, embedding_dim=5)
    with torch.no_grad():
        assert ours.proxies is not None
        ours.proxies.data = proxies.clone()
    x = embeddings.clone().requires_grad_(True)
    x_pml = embeddings.clone().requires_grad_(True)
    value, expected = ours(x, labels), pml(x_pml, labels)
    torch.testing.assert_close(value, expected)
    value.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, x_pml.grad)
    assert ours.proxies.grad is not None
    pml_grad = pml.W.grad.T if hasattr(pml, "W") else pml.proxies.grad
    torch.testing.assert_close(ours.proxies.grad, pml_grad)


# -- the learnable proxies ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_prepare_sizes_the_proxies_from_the_data(name: str) -> None:
    loss = build_loss(name)
    assert loss_parameters(loss) == []
    torch.manual_seed(3)
    prepare_loss(loss, targets=torch.tensor([0, 1, 2]), num_classes=6, embedding_dim=8)
    (proxies,) = loss_parameters(loss)
    assert proxies.shape == (6, 8)
    again = build_loss(name)
    torch.manual_seed(3)
    prepare_loss(again, targets=torch.tensor([0, 1, 2]), num_classes=6, embedding_dim=8)
    assert torch.equal(proxies, again.proxies)  # the same seed, the same proxies: DDP processes start equal
    prepare_loss(loss, targets=torch.tensor([0, 1, 2]), num_classes=6, embedding_dim=8)
    assert loss.proxies is proxies  # a second call keeps them
    assert "num_classes=6, embedding_dim=8" in repr(loss)


@pytest.mark.parametrize("name", NAMES)
def test_built_with_explicit_sizes_it_works_without_prepare(name: str) -> None:
    loss = CLASSES[name](num_classes=3, embedding_dim=4)
    value = loss(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    value.backward()
    assert torch.isfinite(value) and loss.proxies is not None and loss.proxies.grad is not None
    prepare_loss(loss, targets=torch.tensor([0, 1]), num_classes=3, embedding_dim=4)  # the same sizes: kept
    with pytest.raises(ValueError, match=rf"{name}: its proxies are for 3 classes of 4-d embeddings, but the data"):
        prepare_loss(loss, targets=torch.tensor([0, 1]), num_classes=5, embedding_dim=4)


def test_lr_multipliers_and_traits() -> None:
    assert loss_traits(ProxyAnchorLoss).lr_multiplier == 100.0
    assert loss_traits(ProxyNCALoss).lr_multiplier == 100.0
    assert loss_traits(ArcFaceLoss).lr_multiplier == 1.0
    traits = loss_traits(ArcFaceLoss)
    assert traits.tuple_kind is None and traits.distance == "cosine"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str) -> None:
    trained = CLASSES[name](num_classes=3, embedding_dim=4)
    unprepared = build_loss(name)
    unprepared.load_state_dict(trained.state_dict())  # an unprepared loss takes the checkpoint's size
    assert torch.equal(unprepared.proxies, trained.proxies)
    other = CLASSES[name](num_classes=5, embedding_dim=4)
    with pytest.raises(LossInputError, match=rf"{name}: the checkpoint holds proxies for 3 classes of 4-d"):
        other.load_state_dict(trained.state_dict())
    wider = CLASSES[name](num_classes=3, embedding_dim=6)
    with pytest.raises(LossInputError, match=r"but this run's data and model have 3 classes of 6-d embeddings"):
        wider.load_state_dict(trained.state_dict())


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_names_the_loss(name: str) -> None:
    loss = CLASSES[name](num_classes=3, embedding_dim=4)
    embeddings = torch.randn(4, 4)
    with pytest.raises(LossInputError, match=rf"{name}: expected 4-d embeddings, the width of its 3 class proxies"):
        loss(torch.randn(4, 6), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match=rf"{name}: expected embeddings \(N, D\) .* got .* torch.float32"):
        loss(embeddings, torch.tensor([0.0, 1.0, 2.0, 0.0]))  # float labels
    with pytest.raises(LossInputError, match=rf"{name}: expected embeddings"):
        loss(embeddings, torch.tensor([0, 1, 2]))  # one label short
    with pytest.raises(LossInputError, match=rf"{name}: expected embeddings"):
        loss(embeddings, torch.tensor([[0, 1], [2, 0]]))  # 2-D labels
    with pytest.raises(LossInputError, match=rf"{name}: expected labels in \[0, 2\] .* got labels from 0 to 3"):
        loss(embeddings, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(LossInputError, match=rf"{name}: expected indices_tuple=None, got a miner's tuples.*miner=null"):
        loss(embeddings, torch.tensor([0, 1, 2, 0]), (torch.tensor([0]), torch.tensor([1]), torch.tensor([2])))
    with pytest.raises(LossInputError, match=rf"{name}: has no class proxies yet: call prepare"):
        build_loss(name)(embeddings, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=rf"{name}: expected both `num_classes` and `embedding_dim` or neither"):
        CLASSES[name](num_classes=3)
    with pytest.raises(ValueError, match=rf"{name}: expected `num_classes` to be an int >= 1, got 0"):
        CLASSES[name](num_classes=0, embedding_dim=3)
    with pytest.raises(ValueError, match=rf"{name}: `prepare` needs `embedding_dim`"):
        build_loss(name).prepare(targets=torch.tensor([0]), num_classes=3)
    with pytest.raises(ValueError, match=rf"{name}: expected `reduction` in"):
        CLASSES[name](reduction="mean_nonzero")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("arcface", {"margin": 2.0}, r"arcface: expected `margin` in \[0, π/2\] radians, got 2.0 \(PML's 28.6° is"),
        ("arcface", {"scale": 0.0}, r"arcface: expected `scale` > 0, got 0.0"),
        ("cosface", {"margin": -0.1}, r"cosface: expected `margin` in \[0, 2\]"),
        ("normalized_softmax", {"temperature": 0.0}, r"normalized_softmax: expected `temperature` > 0"),
        ("proxy_nca", {"softmax_scale": -1.0}, r"proxy_nca: expected `softmax_scale` > 0"),
        ("proxy_anchor", {"alpha": 0.0}, r"proxy_anchor: expected `alpha` > 0"),
        ("proxy_anchor", {"margin": -0.5}, r"proxy_anchor: expected `margin` in \[0, 1\]"),
    ],
)
def test_invalid_options(name: str, options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CLASSES[name](**options)


def test_float32_embeddings_with_float64_proxies_keep_the_embeddings_dtype() -> None:
    loss = ArcFaceLoss(num_classes=3, embedding_dim=4).double()
    assert loss(torch.randn(4, 4), torch.tensor([0, 1, 2, 0])).dtype == torch.float32


def test_arcface_gradient_is_finite_when_an_embedding_equals_its_proxy() -> None:
    loss = ArcFaceLoss(num_classes=2, embedding_dim=2)
    with torch.no_grad():
        assert loss.proxies is not None
        loss.proxies.copy_(torch.eye(2))
    embeddings = torch.eye(2).requires_grad_(True)  # θ = 0 exactly, where acos has an infinite slope
    loss(embeddings, torch.tensor([0, 1])).backward()
    assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(loss.proxies.grad).all()


def test_a_miner_with_a_proxy_loss_fails_at_its_first_step_naming_the_loss() -> None:
    from lossforge import build_miner
    from lossforge.contract import Task
    from lossforge.training.module import LossTask

    loss = ProxyAnchorLoss(num_classes=3, embedding_dim=4)
    module = LossTask(model=nn.Identity(), loss=loss, task=Task.METRIC, num_outputs=4, miner=build_miner("all_pairs"))
    with pytest.raises(
        LossInputError, match=r"proxy_anchor: expected indices_tuple=None.*Drop the miner \(miner=null\)"
    ):
        module.loss_value(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]), mine=True)
    assert torch.isfinite(
        module.loss_value(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
    )  # evaluation: no miner


def test_a_binary_dataset_gets_a_proxy_per_label() -> None:
    loss = build_loss("arcface")  # a binary dataset declares one output, its labels are 0 and 1
    prepare_loss(loss, targets=torch.tensor([0, 1, 1, 0]), num_classes=1, embedding_dim=3)
    assert loss.proxies.shape == (2, 3)
