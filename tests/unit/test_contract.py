"""Every loss and miner lossforge ships — its own and the example plugin's — against the common contract,
one test id per component and check; and the kit itself, on components that break one promise each."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from lossforge.contract import TASKS, Task
from lossforge.losses.base import Loss, input_error, shape
from lossforge.losses.regression import HuberLoss
from lossforge.testing import (
    LOSS_CHECKS,
    MINER_CHECKS,
    Check,
    check_loss,
    check_miner,
    component_checks,
    loss_checks,
    loss_names,
    make_inputs,
    parametrize_checks,
)

#: The components lossforge's suite checks: its own and the plugin it ships, never whatever else is installed.
SHIPPED = [
    check for distribution in ("lossforge", "lossforge-extras") for check in component_checks(distribution=distribution)
]


@parametrize_checks(SHIPPED)
def test_contract(check: Check) -> None:
    check()


def test_every_shipped_component_gets_every_check() -> None:
    components = {check.component for check in SHIPPED}
    assert {"focal", "triplet", "semihard_triplets"} <= components
    focal = [check.name for check in SHIPPED if check.component == "focal"]
    assert focal == [check.__name__ for check in LOSS_CHECKS]
    semihard = [check.name for check in SHIPPED if check.component == "semihard_triplets"]
    assert semihard == [check.__name__ for check in MINER_CHECKS]


@pytest.mark.parametrize(
    ("name", "params", "tasks"),
    [
        ("focal", {"gamma": 0.5, "alpha": 0.25}, ("binary",)),
        ("focal", {"alpha": [1.0, 2.0, 0.5, 3.0]}, ("multiclass",)),
        ("weighted_cross_entropy", {"weights": "effective_number", "beta": 0.9}, None),
        ("weighted_cross_entropy", {"weights": [1.0, 2.0, 3.0, 4.0]}, None),
        ("cross_entropy", {"label_smoothing": 0.1}, None),
        ("bce", {"pos_weight": [1.0, 2.0, 0.5, 3.0]}, ("multilabel",)),
        ("hinge", {"margin": 0.0}, None),
    ],
)
def test_non_default_configurations(name: str, params: dict, tasks: tuple[str, ...] | None) -> None:
    check_loss(name, params=params, tasks=tasks)


def test_a_class_can_be_checked_directly() -> None:
    check_loss(HuberLoss, params={"delta": 0.1}, dtypes=(torch.float64,))


def test_an_instance_is_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="pass the class and `params=`"):
        check_loss(HuberLoss())  # type: ignore[arg-type]


def test_names_filter_by_package() -> None:
    assert {"l1", "focal", "bce"} <= set(loss_names(distribution="lossforge"))
    assert loss_names(distribution="no-such-plugin") == []
    assert loss_names("l?") == ["l1", "l2"]


# -- make_inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_make_inputs(task: Task, dtype: torch.dtype) -> None:
    prediction, target = make_inputs(task, batch=8, num_classes=3, dim=5, dtype=dtype)
    assert prediction.dtype == dtype and prediction.requires_grad and not target.requires_grad
    assert prediction.shape[0] == target.shape[0] == 8
    if task == Task.REGRESSION:
        assert prediction.shape == target.shape == (8, 5)
    elif task == Task.BINARY:
        assert prediction.shape == (8,) and set(target.tolist()) == {0.0, 1.0}
    elif task == Task.MULTICLASS:
        assert prediction.shape == (8, 3) and target.dtype == torch.int64 and set(target.tolist()) == {0, 1, 2}
    elif task == Task.MULTILABEL:
        assert prediction.shape == target.shape == (8, 3) and set(target.unique().tolist()) <= {0.0, 1.0}
    else:
        counts = target.bincount()
        assert prediction.shape == (8, 5) and target.dtype == torch.int64
        assert len(counts) >= 2 and counts.min() >= 2


def test_make_inputs_is_deterministic_and_validates() -> None:
    first, second = make_inputs(Task.MULTICLASS, seed=3), make_inputs(Task.MULTICLASS, seed=3)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    with pytest.raises(ValueError, match="expected `task` in"):
        make_inputs("ranking")
    with pytest.raises(ValueError, match="metric inputs need batch >= 4"):
        make_inputs(Task.METRIC, batch=3)


# -- the kit catches broken losses -----------------------------------------------------------------


class ToyL1(Loss):
    """A correct minimal loss; the subclasses below each break one rule."""

    name: ClassVar[str] = "toy_l1"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)

    def values(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape:
            raise input_error(self.name, "equal shapes", f"{shape(prediction)} and {shape(target)}")
        return (prediction - target).abs().sum(dim=1)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = self.values(prediction, target)
        return {"none": values, "sum": values.sum(), "mean": values.mean()}[self.reduction]


class MeanIsSum(ToyL1):
    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = self.values(prediction, target)
        return values if self.reduction == "none" else values.sum()


class AcceptsAnyTarget(ToyL1):
    def values(self, prediction: Tensor, target: Tensor) -> Tensor:
        return (prediction - target[: len(prediction)].mean()).abs().sum(dim=1)


class NotFinite(ToyL1):
    def values(self, prediction: Tensor, target: Tensor) -> Tensor:
        return super().values(prediction, target) / 0


class AlwaysFloat32(ToyL1):
    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return super().forward(prediction, target).float()


class Detached(ToyL1):
    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return super().forward(prediction, target).detach()


class PositionalParameter(ToyL1):
    def __init__(self, scale: float = 1.0, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class NoDefault(ToyL1):
    def __init__(self, *, scale: float, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class NoAnnotation(ToyL1):
    def __init__(self, *, scale=1.0, reduction: str = "mean") -> None:  # no annotation on `scale`: the point
        super().__init__(reduction=reduction)


class NoTasks(ToyL1):
    tasks: ClassVar[tuple[Task, ...]] = ()


class WeightedWithWrongMean(ToyL1):
    """Declares a weighted mean but divides by a constant, so repeating the batch changes it."""

    mean_is_weighted = True

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = self.values(prediction, target)
        return {"none": values, "sum": values.sum(), "mean": values.sum() / 3}[self.reduction]


def test_the_toy_loss_passes() -> None:
    check_loss(ToyL1)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (MeanIsSum, r"'mean' .* != 'none'.mean\(\)"),
        (AcceptsAnyTarget, "accepted a target of shape"),
        (NotFinite, "is not finite"),
        (AlwaysFloat32, "output dtype torch.float32, input dtype torch.float64"),
        (Detached, "detached from the prediction"),
        (PositionalParameter, "'scale' must be keyword-only"),
        (NoDefault, "'scale' needs a default"),
        (NoAnnotation, "'scale' needs a type annotation"),
        (NoTasks, "must declare a class attribute `tasks`, a non-empty tuple"),
        (WeightedWithWrongMean, "changed when the batch was repeated"),
    ],
)
def test_the_kit_catches(broken: type, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_loss(broken, dtypes=(torch.float64,))


# -- the kit catches broken miners -----------------------------------------------------------------


class LoopPairMiner(nn.Module):
    """All positive and negative pairs, by an explicit loop: a correct pair miner."""

    tuple_kind: ClassVar[str] = "pair"

    def __init__(self, *, positives_only: bool = False) -> None:
        super().__init__()
        self.positives_only = positives_only

    @torch.no_grad()
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        positive: list[tuple[int, int]] = []
        negative: list[tuple[int, int]] = []
        for i, first in enumerate(labels.tolist()):
            for j, second in enumerate(labels.tolist()):
                if i != j:
                    (positive if first == second else negative).append((i, j))
        if self.positives_only:
            negative = []
        return _columns(positive, 2) + _columns(negative, 2)


def _columns(rows: list[tuple[int, ...]], width: int) -> tuple[Tensor, ...]:
    table = torch.tensor(rows, dtype=torch.int64).reshape(-1, width)
    return tuple(table[:, k] for k in range(width))


class SelfPositives(LoopPairMiner):
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        a1, p, a2, n = super().forward(embeddings, labels)
        return torch.cat([a1, a1[:1]]), torch.cat([p, a1[:1]]), a2, n


class SwappedNegatives(LoopPairMiner):
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        a1, p, a2, n = super().forward(embeddings, labels)
        return a2, n, a1, p


class FloatIndices(LoopPairMiner):
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return tuple(t.float() for t in super().forward(embeddings, labels))  # type: ignore[return-value]


class ThreeForPairs(LoopPairMiner):
    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return super().forward(embeddings, labels)[:3]  # type: ignore[return-value]


def test_the_loop_miner_passes() -> None:
    check_miner(LoopPairMiner)
    check_miner(LoopPairMiner, params={"positives_only": True})


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (SelfPositives, "a positive is its own anchor"),
        (SwappedNegatives, "a positive has another label"),
        (FloatIndices, "must be a 1-D int64 tensor"),
        (ThreeForPairs, "expected a tuple of 4 index tensors"),
    ],
)
def test_the_kit_catches_miners(broken: type, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_miner(broken)


# -- one named check per promise, and `lossforge check` -----------------------------------------------


def _broken_checks(checks: list[Check]) -> list[str]:
    broken = []
    for check in checks:
        try:
            check()
        except AssertionError:
            broken.append(check.name)
    return broken


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (MeanIsSum, "check_reductions"),
        (AcceptsAnyTarget, "check_bad_targets"),
        (Detached, "check_outputs"),
        (NoDefault, "check_constructor"),
    ],
)
def test_each_broken_promise_fails_its_own_named_check(broken: type, check: str) -> None:
    assert check in _broken_checks(loss_checks(broken, dtypes=(torch.float64,)))
    assert _broken_checks(loss_checks(ToyL1, dtypes=(torch.float64,))) == []


class IgnoresMinedTuples(Loss):
    """A metric loss whose forward takes no ``indices_tuple``: lossforge's training path would fail on it."""

    name: ClassVar[str] = "no_tuples"
    tasks: ClassVar[tuple[Task, ...]] = (Task.METRIC,)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        values = torch.cdist(embeddings, embeddings)[labels[:, None] == labels[None, :]]
        return {"none": values, "sum": values.sum(), "mean": values.mean() if values.numel() else values.sum()}[
            self.reduction
        ] * 0


def test_the_training_path_is_checked_too() -> None:
    assert "check_trains" in _broken_checks(loss_checks(IgnoresMinedTuples, dtypes=(torch.float64,)))


def test_lossforge_check_gives_a_verdict_per_component(capsys: pytest.CaptureFixture[str]) -> None:
    from lossforge.commands.check import main as check_components
    from lossforge.registry import LOSSES

    assert check_components(["lossforge-extras"]) == 0
    out = capsys.readouterr().out
    assert "7 of 7 components meet the contract" in out  # 4 losses, a miner, a dataset and a model
    assert "ok    dataset spirals" in out and "ok    model   residual_mlp" in out
    LOSSES.register("mean_is_sum", MeanIsSum, distribution="lossforge-test-broken")
    try:
        assert check_components(["lossforge-test-broken"]) == 1
    finally:
        LOSSES.refresh()
    out = capsys.readouterr().out
    assert "FAIL  loss    mean_is_sum" in out and "check_reductions: " in out
    assert "0 of 1 components meet the contract" in out


# -- learnable losses: check_learnable ---------------------------------------------------------------


class ToyProxies(Loss):
    """A correct minimal learnable metric loss: cross-entropy over the cosines with one proxy per class."""

    name: ClassVar[str] = "toy_proxies"
    tasks: ClassVar[tuple[Task, ...]] = (Task.METRIC,)
    lr_multiplier: ClassVar[float] = 10.0

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.proxies = nn.Parameter(torch.empty(0, 0))

    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        assert embedding_dim is not None
        self.proxies = nn.Parameter(self.draw(num_classes, embedding_dim))

    def draw(self, num_classes: int, embedding_dim: int) -> Tensor:
        return torch.randn(num_classes, embedding_dim)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: object = None) -> Tensor:
        proxies = nn.functional.normalize(self.proxies.to(embeddings.dtype), dim=1)
        logits = nn.functional.normalize(embeddings, dim=1) @ proxies.T / 0.5
        values = nn.functional.cross_entropy(logits, labels, reduction="none")
        return {"none": values, "sum": values.sum(), "mean": values.mean()}[self.reduction]


class UnusedParameter(ToyProxies):
    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        super().prepare(targets=targets, num_classes=num_classes, embedding_dim=embedding_dim)
        self.temperature = nn.Parameter(torch.ones(()))  # never used in forward


class UnseededProxies(ToyProxies):
    def draw(self, num_classes: int, embedding_dim: int) -> Tensor:  # its own generator: DDP ranks would differ
        return torch.randn(num_classes, embedding_dim, generator=torch.Generator().manual_seed(id(self)))


def test_a_learnable_loss_passes_and_gets_the_learnable_check() -> None:
    assert _broken_checks(loss_checks(ToyProxies, dtypes=(torch.float64,))) == []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (UnusedParameter, "parameter 'temperature' got no gradient"),
        (UnseededProxies, "parameter 'proxies' differs between two builds under the same seed"),
    ],
)
def test_check_learnable_catches(broken: type, message: str) -> None:
    (check,) = [check for check in loss_checks(broken, dtypes=(torch.float64,)) if check.name == "check_learnable"]
    with pytest.raises(AssertionError, match=message):
        check()
