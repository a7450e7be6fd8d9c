"""L1, L2 and Huber against torch.nn, per reduction, in float64; gradients; errors that teach."""

from __future__ import annotations

import re
from functools import partial

import pytest
import torch
from torch import nn

from lossforge import build_loss
from lossforge.losses.base import LossInputError
from lossforge.losses.regression import HuberLoss, L1Loss, L2Loss, huber_loss, l1_loss, l2_loss

REDUCTIONS = ("mean", "sum", "none")
# Each lossforge loss with its torch.nn counterpart (elementwise, reduction="none").
REFERENCES = {
    "l1": lambda: nn.L1Loss(reduction="none"),
    "l2": lambda: nn.MSELoss(reduction="none"),
    "huber": lambda: nn.HuberLoss(reduction="none", delta=1.0),
}


def _pair(*shape: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    prediction = torch.randn(*shape, generator=generator, dtype=torch.float64) * 2
    target = torch.randn(*shape, generator=generator, dtype=torch.float64) * 2
    return prediction, target


def _reduced_our_way(elementwise: torch.Tensor, reduction: str) -> torch.Tensor:
    """torch's elementwise losses ``(N,)`` or ``(N, D)`` reduced as lossforge reduces: summed over ``D`` per sample."""
    per_sample = elementwise.sum(dim=1) if elementwise.dim() == 2 else elementwise  # (N,)
    return {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.mean()}[reduction]


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("shape", [(7,), (7, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch(name: str, shape: tuple[int, ...], reduction: str) -> None:
    prediction, target = _pair(*shape)
    expected = _reduced_our_way(REFERENCES[name]()(prediction, target), reduction)
    actual = build_loss(name, reduction=reduction)(prediction, target)
    torch.testing.assert_close(actual, expected)


DELTAS = [0.1, 0.5, 2.0, 5.0]


def _huber_pair(delta: float, *shape: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction and a target whose residuals run evenly from -3δ to 3δ: both regimes at any δ, and no
    residual at the kink |r| = δ, where finite differences would straddle the two pieces."""
    prediction, _ = _pair(*shape)
    residuals = delta * torch.linspace(-3, 3, prediction.numel(), dtype=torch.float64).reshape(shape)
    return prediction, prediction + residuals


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("shape", [(9,), (9, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_matches_torch_at_every_delta_with_its_gradients(
    delta: float, shape: tuple[int, ...], reduction: str
) -> None:
    prediction, target = _huber_pair(delta, *shape)
    reference_input = prediction.clone().requires_grad_(True)
    elementwise = nn.functional.huber_loss(reference_input, target, delta=delta, reduction="none")
    expected = _reduced_our_way(elementwise, reduction)
    # Unequal weights on the "none" values, so a gradient routed to the wrong sample shows.
    weights = torch.linspace(0.5, 1.5, expected.numel(), dtype=torch.float64).reshape(expected.shape)
    (expected_gradient,) = torch.autograd.grad(expected, reference_input, weights)
    for loss in (partial(huber_loss, delta=delta, reduction=reduction), HuberLoss(delta=delta, reduction=reduction)):
        leaf = prediction.clone().requires_grad_(True)
        actual = loss(leaf, target)
        torch.testing.assert_close(actual, expected)
        (gradient,) = torch.autograd.grad(actual, leaf, weights)
        torch.testing.assert_close(gradient, expected_gradient)


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_gradcheck_at_every_delta(delta: float, reduction: str) -> None:
    prediction, target = _huber_pair(delta, 6, 2)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: huber_loss(p, target, delta=delta, reduction=reduction), (prediction,))


def test_mean_is_torch_mean_times_outputs() -> None:
    prediction, target = _pair(5, 4)
    torch.testing.assert_close(l2_loss(prediction, target), 4 * nn.functional.mse_loss(prediction, target))


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_matches_torch_and_smooth_l1_relation(delta: float) -> None:
    prediction, target = _pair(9)
    ours = huber_loss(prediction, target, delta=delta, reduction="none")
    torch.testing.assert_close(ours, nn.functional.huber_loss(prediction, target, delta=delta, reduction="none"))
    smooth_l1 = nn.functional.smooth_l1_loss(prediction, target, beta=delta, reduction="none")
    torch.testing.assert_close(ours / delta, smooth_l1)


def test_huber_regimes() -> None:
    residuals = torch.tensor([0.5, -0.5, 3.0, -3.0], dtype=torch.float64)
    values = huber_loss(torch.zeros(4, dtype=torch.float64), residuals, delta=1.0, reduction="none")
    torch.testing.assert_close(values, torch.tensor([0.125, 0.125, 2.5, 2.5], dtype=torch.float64))


@pytest.mark.parametrize("function", [l1_loss, l2_loss, huber_loss])
def test_gradcheck(function) -> None:
    prediction, target = _pair(6, 2)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: function(p, target, reduction="sum"), (prediction,))
    assert torch.autograd.gradcheck(lambda p: function(p, target, reduction="none"), (prediction,))


def test_integer_targets_are_accepted() -> None:
    prediction = torch.tensor([0.5, 1.5])
    assert l1_loss(prediction, torch.tensor([1, 1])).item() == pytest.approx(0.5)


def test_l2_declares_plus_minus_one_for_binary() -> None:
    assert L2Loss.tasks == ("regression", "binary")
    assert L2Loss.binary_target_encoding == "plus_minus_one"
    assert not hasattr(L1Loss, "binary_target_encoding")


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize(
    ("prediction", "target", "fragment"),
    [
        (torch.zeros(4, 1), torch.zeros(4), "(4, 1) and (4,)"),  # the classic broadcasting bug
        (torch.zeros(4), torch.zeros(5), "(4,) and (5,)"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "(2, 3, 4)"),
        (torch.zeros(4, dtype=torch.long), torch.zeros(4), "torch.int64"),
        (torch.zeros(4), torch.zeros(4, dtype=torch.complex64), "complex64"),
    ],
)
def test_bad_inputs_name_the_loss(name: str, prediction, target, fragment: str) -> None:
    with pytest.raises(LossInputError, match=rf"^{name}: expected .*{re.escape(fragment)}"):
        build_loss(name)(prediction, target)


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan")])
def test_invalid_delta(delta: float) -> None:
    with pytest.raises(ValueError, match="huber: expected `delta` > 0"):
        HuberLoss(delta=delta)
    with pytest.raises(ValueError, match="huber: expected `delta` > 0"):
        huber_loss(torch.zeros(2), torch.zeros(2), delta=delta)


def test_invalid_reduction() -> None:
    with pytest.raises(ValueError, match="l1: expected `reduction`"):
        L1Loss(reduction="avg")
