"""The optimizer: one parameter group for the model, and one for a loss's own parameters (proxies) at its
learning-rate multiplier, without weight decay; what ``cfg.optimizer`` may say."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from lossforge.contract import ContractError, Task, loss_parameters, loss_traits, prepare_loss
from lossforge.losses.regression import HuberLoss
from lossforge.training.module import LossTask
from lossforge.training.optim import OptimizerConfig, build_optimizer


class _Proxies(nn.Module):
    """A minimal learnable metric loss: pull each embedding towards its class's proxy."""

    tasks: ClassVar[tuple[str, ...]] = ("metric",)
    lr_multiplier: ClassVar[float] = 50.0

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction
        self.proxies = nn.Parameter(torch.empty(0, 0))

    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        assert embedding_dim is not None
        self.proxies = nn.Parameter(torch.randn(num_classes, embedding_dim))

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: object = None) -> Tensor:
        return (embeddings - self.proxies[labels]).pow(2).sum(dim=1).mean()


def _module(loss: nn.Module, optimizer: OptimizerConfig) -> LossTask:
    prepare_loss(loss, targets=torch.tensor([0, 1, 2]), num_classes=3, embedding_dim=4)
    return LossTask(model=nn.Linear(5, 4), loss=loss, task=Task.METRIC, num_outputs=4, optimizer=optimizer)


def test_a_loss_with_parameters_gets_its_own_group() -> None:
    module = _module(_Proxies(), OptimizerConfig(name="adamw", lr=0.002, weight_decay=0.01))
    optimizer = module.configure_optimizers()
    model_group, loss_group = optimizer.param_groups
    assert {id(p) for p in model_group["params"]} == {id(p) for p in module.model.parameters()}
    assert [id(p) for p in loss_group["params"]] == [id(module.loss.proxies)]
    assert model_group["lr"] == 0.002 and model_group["weight_decay"] == 0.01
    assert loss_group["lr"] == pytest.approx(0.002 * 50.0) and loss_group["weight_decay"] == 0.0


def test_the_config_overrides_the_loss_multiplier() -> None:
    module = _module(_Proxies(), OptimizerConfig(name="sgd", lr=0.1, momentum=0.9, loss_lr_multiplier=3.0))
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.3)
    assert optimizer.param_groups[1]["momentum"] == 0.9


def test_a_loss_without_parameters_keeps_one_group() -> None:
    module = LossTask(model=nn.Linear(5, 3), loss=HuberLoss(), task=Task.REGRESSION, num_outputs=3)
    optimizer = module.configure_optimizers()
    assert len(optimizer.param_groups) == 1
    assert len(optimizer.param_groups[0]["params"]) == 2


def test_both_groups_train() -> None:
    torch.manual_seed(0)
    module = _module(_Proxies(), OptimizerConfig(lr=0.01))
    optimizer = module.configure_optimizers()
    before = [p.detach().clone() for p in module.parameters()]
    value = module.loss_value(module(torch.randn(6, 5)), torch.tensor([0, 1, 2, 0, 1, 2]))
    value.backward()
    optimizer.step()
    assert all(not torch.equal(old, new) for old, new in zip(before, module.parameters(), strict=True))


def test_lr_multiplier_defaults_and_validation() -> None:
    assert loss_traits(HuberLoss).lr_multiplier == 1.0
    assert loss_traits(_Proxies).lr_multiplier == 50.0

    class Broken(_Proxies):
        lr_multiplier = 0.0

    with pytest.raises(ContractError, match="lr_multiplier"):
        loss_traits(Broken)
    with pytest.raises(ValueError, match="loss_lr_multiplier"):
        OptimizerConfig(loss_lr_multiplier=-1.0)


def test_prepare_passes_embedding_dim_only_to_hooks_that_take_it() -> None:
    seen: dict[str, object] = {}

    class Old:
        def prepare(self, *, targets: Tensor, num_classes: int) -> None:
            seen["old"] = num_classes

    class Flexible:
        def prepare(self, **options: object) -> None:
            seen["flexible"] = options["embedding_dim"]

    prepare_loss(Old(), targets=torch.zeros(2), num_classes=2, embedding_dim=7)
    prepare_loss(Flexible(), targets=torch.zeros(2), num_classes=2, embedding_dim=7)
    loss = _Proxies()
    prepare_loss(loss, targets=torch.zeros(2), num_classes=2, embedding_dim=7)
    assert seen == {"old": 2, "flexible": 7}
    assert [tuple(p.shape) for p in loss_parameters(loss)] == [(2, 7)]


def test_build_optimizer_without_loss_parameters() -> None:
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(OptimizerConfig(), model.parameters(), loss_parameters=[], loss_lr_multiplier=9.0)
    assert len(optimizer.param_groups) == 1


@pytest.mark.parametrize(("name", "expected"), [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_the_configured_optimizer_is_the_one_built(name: str, expected: type) -> None:
    # `params()` leaves a node's `name` out (components get it from the registry); the optimizer needs it.
    from helpers import compose_config

    from lossforge.training.build import build

    module = build(compose_config("loss=proxy_anchor", f"optimizer={name}", "model.hidden=[8]")).module
    optimizer = module.configure_optimizers()
    assert type(optimizer) is expected
    assert optimizer.param_groups[1]["lr"] == pytest.approx(module.optimizer_config.lr * 100.0)
