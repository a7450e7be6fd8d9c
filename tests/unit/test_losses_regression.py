"""L1, L2 and Huber against torch.nn, the robust family against independent float64 formulas (numpy), per
reduction; gradients; limits; influence functions (the "robust to outliers" story as tested facts); errors
that teach."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from lossforge import build_loss
from lossforge.losses.base import LossInputError
from lossforge.losses.regression import (
    CauchyLoss,
    CharbonnierLoss,
    HuberLoss,
    L1Loss,
    L2Loss,
    QuantileLoss,
    TukeyLoss,
    cauchy_loss,
    charbonnier_loss,
    huber_loss,
    l1_loss,
    l2_loss,
    log_cosh_loss,
    quantile_loss,
    tukey_loss,
)

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


ROBUST = ("charbonnier", "log_cosh", "cauchy", "tukey", "quantile")


@pytest.mark.parametrize("name", sorted(REFERENCES) + list(ROBUST))
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


# -- the robust family -------------------------------------------------------------------------------
#
# Each reference is the textbook formula in numpy float64, written from the definition and sharing no
# code with the implementation: rho(r, parameter) with r = target - prediction, elementwise.


def _np_charbonnier(r: np.ndarray, epsilon: float) -> np.ndarray:
    return np.sqrt(r**2 + epsilon**2) - epsilon


def _np_log_cosh(r: np.ndarray, _: float) -> np.ndarray:
    return np.log(np.cosh(r))  # the test residuals stay far below cosh's overflow


def _np_cauchy(r: np.ndarray, c: float) -> np.ndarray:
    return c**2 / 2 * np.log(1 + (r / c) ** 2)


def _np_tukey(r: np.ndarray, c: float) -> np.ndarray:
    inside = c**2 / 6 * (1 - (1 - (r / c) ** 2) ** 3)
    return np.where(np.abs(r) <= c, inside, c**2 / 6)


def _np_quantile(r: np.ndarray, tau: float) -> np.ndarray:
    return np.where(r >= 0, tau * r, (tau - 1) * r)


# name: (numpy reference, the pure function, its parameter's name or None, parameter values to test)
ROBUST_CASES: dict[str, tuple[Callable[..., np.ndarray], Callable[..., torch.Tensor], str | None, list[float]]] = {
    "charbonnier": (_np_charbonnier, charbonnier_loss, "epsilon", [0.1, 1.0, 3.0]),
    "log_cosh": (_np_log_cosh, log_cosh_loss, None, [0.0]),
    "cauchy": (_np_cauchy, cauchy_loss, "c", [0.5, 2.3849, 4.0]),
    "tukey": (_np_tukey, tukey_loss, "c", [1.0, 4.685]),
    "quantile": (_np_quantile, quantile_loss, "tau", [0.1, 0.5, 0.9]),
}


def _options(name: str, value: float) -> dict[str, float]:
    parameter = ROBUST_CASES[name][2]
    return {} if parameter is None else {parameter: value}


def _robust_cases() -> list[tuple[str, float]]:
    return [(name, value) for name, case in ROBUST_CASES.items() for value in case[3]]


def _spread_pair(*shape: int, scale: float = 6.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals from about -scale to scale across every regime of every loss, shifted off 0 (quantile's
    kink) and off the tested parameters (tukey's c, where finite differences would straddle two pieces)."""
    prediction, _ = _pair(*shape)
    residuals = scale * (torch.linspace(-1, 1, prediction.numel(), dtype=torch.float64) + 0.01234)
    residuals = residuals[torch.randperm(residuals.numel(), generator=torch.Generator().manual_seed(1))]
    return prediction, prediction + residuals.reshape(shape)


@pytest.mark.parametrize(("name", "value"), _robust_cases())
@pytest.mark.parametrize("shape", [(9,), (9, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_robust_losses_match_their_formula(name: str, value: float, shape: tuple[int, ...], reduction: str) -> None:
    reference = ROBUST_CASES[name][0]
    prediction, target = _spread_pair(*shape)
    elementwise = torch.from_numpy(reference((target - prediction).numpy(), value))
    expected = _reduced_our_way(elementwise, reduction)
    torch.testing.assert_close(
        ROBUST_CASES[name][1](prediction, target, reduction=reduction, **_options(name, value)), expected
    )
    module = build_loss(name, reduction=reduction, **_options(name, value))
    torch.testing.assert_close(module(prediction, target), expected)


@pytest.mark.parametrize(("name", "value"), _robust_cases())
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_robust_gradcheck(name: str, value: float, reduction: str) -> None:
    prediction, target = _spread_pair(6, 2)
    prediction.requires_grad_(True)
    function = ROBUST_CASES[name][1]
    options = _options(name, value)
    assert torch.autograd.gradcheck(lambda p: function(p, target, reduction=reduction, **options), (prediction,))


def _influence(loss: nn.Module, residuals: torch.Tensor) -> torch.Tensor:
    """psi(r) = d rho / d r with r = target - prediction, through autograd, float64."""
    prediction = torch.zeros_like(residuals, requires_grad=True)
    (gradient,) = torch.autograd.grad(loss(prediction, residuals).sum(), prediction)
    return -gradient  # d/dr = -d/d prediction


GRID = torch.cat([torch.linspace(0, 10, 1001, dtype=torch.float64), torch.logspace(1, 6, 200, dtype=torch.float64)])


@pytest.mark.parametrize(
    ("name", "params", "psi"),
    [
        ("charbonnier", {"epsilon": 0.5}, lambda r: r / torch.sqrt(r**2 + 0.25)),
        ("log_cosh", {}, torch.tanh),
        ("cauchy", {"c": 2.0}, lambda r: r / (1 + (r / 2.0) ** 2)),
        ("tukey", {"c": 3.0}, lambda r: torch.where(r.abs() <= 3.0, r * (1 - (r / 3.0) ** 2) ** 2, 0.0)),
        ("quantile", {"tau": 0.3}, lambda r: torch.where(r > 0, 0.3, torch.where(r < 0, -0.7, -0.2)).to(r.dtype)),
    ],
)
def test_influence_function_is_the_closed_form(name: str, params: dict, psi: Callable) -> None:
    residuals = torch.cat([-GRID.flip(0), GRID])
    torch.testing.assert_close(_influence(build_loss(name, reduction="none", **params), residuals), psi(residuals))


@pytest.mark.parametrize(
    ("loss", "bound"),
    [
        (L1Loss(reduction="none"), 1.0),
        (HuberLoss(delta=1.5, reduction="none"), 1.5),
        (CharbonnierLoss(epsilon=0.5, reduction="none"), 1.0),
        (build_loss("log_cosh", reduction="none"), 1.0),
        (QuantileLoss(tau=0.8, reduction="none"), 0.8),
    ],
)
def test_bounded_influence_never_exceeds_its_bound_and_never_falls(loss: nn.Module, bound: float) -> None:
    psi = _influence(loss, GRID)  # r >= 0
    assert psi.max().item() <= bound + 1e-12
    assert psi[-1].item() == pytest.approx(bound, rel=1e-6)  # reached in the far tail: the outlier still pulls
    assert bool((psi.diff() >= -1e-12).all())  # never redescends
    assert _influence(L2Loss(reduction="none"), GRID)[-1].item() == pytest.approx(2e6)  # L2: unbounded


@pytest.mark.parametrize("c", [0.5, 2.3849, 6.0])
def test_cauchy_influence_redescends_after_peaking_at_c(c: float) -> None:
    psi = _influence(CauchyLoss(c=c, reduction="none"), GRID * c)  # grid in units of c
    peak = int(psi.argmax())
    assert (GRID * c)[peak].item() == pytest.approx(c, rel=1e-2)
    assert psi[peak].item() == pytest.approx(c / 2, rel=1e-4)
    assert bool((psi[peak:].diff() <= 1e-12).all())  # falls all the way out...
    assert psi[-1].item() < 1e-5 * psi[peak].item()  # ...to almost nothing: far outliers barely pull
    assert psi[-1].item() > 0  # but never exactly nothing: no stall


@pytest.mark.parametrize("c", [1.0, 4.685])
def test_tukey_influence_is_exactly_zero_beyond_c(c: float) -> None:
    residuals = GRID * c
    psi = _influence(TukeyLoss(c=c, reduction="none"), residuals)
    assert bool((psi[residuals > c] == 0).all())
    assert bool((psi[(residuals > 0) & (residuals < c)] > 0).all())
    values = tukey_loss(torch.zeros_like(residuals), residuals, c=c, reduction="none")
    assert bool((values[residuals >= c] == c**2 / 6).all())  # the loss is flat there, not just its slope


def test_tukey_stalls_when_every_residual_starts_beyond_c() -> None:
    """The documented trap: started far from the data, the redescending Tukey loss gives no gradient at
    all, while Cauchy (also redescending, but never to exactly 0) still moves towards the data."""
    target = torch.tensor([10.0, 11.0, 12.0], dtype=torch.float64)
    start = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (tukey_gradient,) = torch.autograd.grad(tukey_loss(start, target, c=4.685), start)
    assert bool((tukey_gradient == 0).all())
    (cauchy_gradient,) = torch.autograd.grad(cauchy_loss(start, target), start)
    assert bool((cauchy_gradient < 0).all())  # descending it raises the prediction towards the targets


def test_limits_small_and_large_residuals() -> None:
    small = torch.tensor([1e-3, -2e-3, 5e-4], dtype=torch.float64)
    zeros = torch.zeros_like(small)
    half_l2 = 0.5 * small**2
    for epsilon in (0.5, 2.0):  # Charbonnier ≈ L2 / (2ε) near zero: pseudo-Huber (× ε) is L2/2 exactly there
        values = charbonnier_loss(zeros, small, epsilon=epsilon, reduction="none")
        torch.testing.assert_close(values, half_l2 / epsilon, rtol=1e-5, atol=0)
    torch.testing.assert_close(log_cosh_loss(zeros, small, reduction="none"), half_l2, rtol=1e-5, atol=0)
    torch.testing.assert_close(cauchy_loss(zeros, small, c=1.0, reduction="none"), half_l2, rtol=1e-5, atol=0)
    torch.testing.assert_close(tukey_loss(zeros, small, c=1.0, reduction="none"), half_l2, rtol=1e-5, atol=0)
    large = torch.tensor([50.0, -80.0], dtype=torch.float64)
    zeros = torch.zeros_like(large)
    torch.testing.assert_close(log_cosh_loss(zeros, large, reduction="none"), large.abs() - math.log(2))
    torch.testing.assert_close(
        charbonnier_loss(zeros, large, epsilon=0.5, reduction="none"), large.abs() - 0.5, rtol=1e-4, atol=0
    )


@pytest.mark.parametrize("shape", [(7,), (7, 3)])
def test_charbonnier_tends_to_l1(shape: tuple[int, ...]) -> None:
    prediction, target = _pair(*shape)
    for epsilon in (1e-3, 1e-6):  # |charbonnier - L1| <= ε per element
        gap = (
            charbonnier_loss(prediction, target, epsilon=epsilon, reduction="sum")
            - l1_loss(prediction, target, reduction="sum")
        ).abs()
        assert gap.item() <= epsilon * prediction.numel()


def test_pseudo_huber_is_charbonnier_scaled_by_delta() -> None:
    prediction, target = _spread_pair(11)
    r = (target - prediction).numpy()
    for delta in (0.3, 1.0, 2.5):
        pseudo_huber = torch.from_numpy(delta**2 * (np.sqrt(1 + (r / delta) ** 2) - 1))
        scaled = delta * charbonnier_loss(prediction, target, epsilon=delta, reduction="none")
        torch.testing.assert_close(scaled, pseudo_huber)
    torch.testing.assert_close(  # at the default ε = δ = 1 they are the same loss
        CharbonnierLoss(reduction="none")(prediction, target), torch.from_numpy(np.sqrt(1 + r**2) - 1)
    )


@pytest.mark.parametrize("shape", [(9,), (9, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_quantile_at_one_half_is_half_l1_with_its_gradient(shape: tuple[int, ...], reduction: str) -> None:
    prediction, target = _pair(*shape)
    target = target.clone()
    target.view(-1)[:2] = prediction.view(-1)[:2]  # two residuals exactly 0, where both take the midpoint 0
    expected_input = prediction.clone().requires_grad_(True)
    expected = 0.5 * l1_loss(expected_input, target, reduction=reduction)
    actual_input = prediction.clone().requires_grad_(True)
    actual = quantile_loss(actual_input, target, tau=0.5, reduction=reduction)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    weights = torch.linspace(0.5, 1.5, expected.numel(), dtype=torch.float64).reshape(expected.shape)
    (expected_gradient,) = torch.autograd.grad(expected, expected_input, weights)
    (actual_gradient,) = torch.autograd.grad(actual, actual_input, weights)
    torch.testing.assert_close(actual_gradient, expected_gradient, rtol=0, atol=0)


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_quantile_minimiser_is_the_tau_quantile(tau: float) -> None:
    targets = torch.arange(1, 102, dtype=torch.float64)  # 1..101: quantiles are sample points
    grid = torch.linspace(0, 102, 10201, dtype=torch.float64)
    losses = torch.stack([quantile_loss(m.expand(101), targets, tau=tau, reduction="sum") for m in grid])
    assert grid[losses.argmin()].item() == pytest.approx(float(np.quantile(targets.numpy(), tau)), abs=0.011)


def test_robust_losses_resist_a_far_outlier_cluster_as_the_lecture_says() -> None:
    """The best constant fit under 20 % outliers 10 units up: L2 follows the mean, the bounded losses are
    pulled a bounded amount, the redescending ones hardly at all."""
    clean = torch.from_numpy(np.random.default_rng(0).standard_normal(400))
    targets = torch.cat([clean, 10 + clean[:100]])  # (500,)
    grid = torch.linspace(-1, 4, 5001, dtype=torch.float64)

    def best_constant(loss: nn.Module) -> float:
        return grid[torch.stack([loss(m.expand(500), targets) for m in grid]).argmin()].item()

    fits = {
        name: best_constant(build_loss(name, **params))
        for name, params in {
            "l2": {},
            "l1": {},
            "huber": {},
            "charbonnier": {},
            "log_cosh": {},
            "quantile": {},
            "cauchy": {},
            "tukey": {},
        }.items()
    }
    assert fits["l2"] == pytest.approx(targets.mean().item(), abs=1e-3)
    bounded = ("l1", "huber", "charbonnier", "log_cosh", "quantile")
    assert all(0 < fits[name] < fits["l2"] / 3 for name in bounded), fits
    assert fits["quantile"] == pytest.approx(fits["l1"], abs=1e-3)  # τ = 0.5: the median, as L1
    assert all(abs(fits[name]) < min(abs(fits[b]) for b in bounded) for name in ("cauchy", "tukey")), fits
    assert abs(fits["tukey"] - clean.mean().item()) < 0.05  # beyond c: the outliers are not there at all


@pytest.mark.parametrize("name", ROBUST)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_residuals_stay_finite(name: str, dtype: torch.dtype) -> None:
    residuals = torch.tensor([1e4, -1e4, 1e30, -1e30, 0.0, 1e-30], dtype=dtype)
    prediction = torch.zeros_like(residuals, requires_grad=True)
    values = build_loss(name, reduction="none")(prediction, residuals)
    (gradient,) = torch.autograd.grad(values.sum(), prediction)
    assert bool(torch.isfinite(values).all()) and bool(torch.isfinite(gradient).all()), (values, gradient)
    assert bool((values >= 0).all())


def test_log_cosh_at_ten_thousand() -> None:
    """cosh(1e4) overflows even float64; the loss must not: |r| - log 2 and a gradient of tanh = ±1."""
    residuals = torch.tensor([1e4, -1e4], dtype=torch.float32)
    prediction = torch.zeros(2, requires_grad=True)
    values = log_cosh_loss(prediction, residuals, reduction="none")
    torch.testing.assert_close(values, torch.full((2,), 1e4 - math.log(2)))
    (gradient,) = torch.autograd.grad(values.sum(), prediction)
    torch.testing.assert_close(gradient, torch.tensor([-1.0, 1.0]))  # d/d prediction = -tanh(r)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_residuals_keep_their_relative_precision(dtype: torch.dtype) -> None:
    """No cancellation near zero: each loss is r²/2 (charbonnier: r²/(2ε)) to relative precision at r = 1e-4."""
    r = torch.tensor([1e-4, -3e-5], dtype=dtype)
    zeros = torch.zeros_like(r)
    expected = 0.5 * r.double() ** 2
    for values in (
        charbonnier_loss(zeros, r, epsilon=1.0, reduction="none"),
        log_cosh_loss(zeros, r, reduction="none"),
        cauchy_loss(zeros, r, c=1.0, reduction="none"),
        tukey_loss(zeros, r, c=1.0, reduction="none"),
    ):
        torch.testing.assert_close(values.double(), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (CharbonnierLoss, {"epsilon": 0.0}, r"charbonnier: expected `epsilon` > 0 \(the residual scale .*\), got 0.0"),
        (CharbonnierLoss, {"epsilon": float("nan")}, "charbonnier: expected `epsilon` > 0"),
        (
            CauchyLoss,
            {"c": -1.0},
            r"cauchy: expected `c` > 0 \(the residual scale where the influence peaks\), got -1.0",
        ),
        (TukeyLoss, {"c": 0.0}, r"tukey: expected `c` > 0 \(the residual beyond which a sample is ignored\)"),
        (
            QuantileLoss,
            {"tau": 1.0},
            r"quantile: expected `tau` in \(0, 1\), the quantile to estimate \(0.5: the median\), got 1.0",
        ),
        (QuantileLoss, {"tau": 0.0}, r"quantile: expected `tau` in \(0, 1\)"),
        (QuantileLoss, {"tau": float("nan")}, r"quantile: expected `tau` in \(0, 1\)"),
    ],
)
def test_robust_invalid_params(cls: type, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**params)


def test_pure_functions_validate_their_parameters_too() -> None:
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="charbonnier: expected `epsilon` > 0"):
        charbonnier_loss(x, x, epsilon=-1.0)
    with pytest.raises(ValueError, match="cauchy: expected `c` > 0"):
        cauchy_loss(x, x, c=0.0)
    with pytest.raises(ValueError, match="tukey: expected `c` > 0"):
        tukey_loss(x, x, c=0.0)
    with pytest.raises(ValueError, match=r"quantile: expected `tau` in \(0, 1\)"):
        quantile_loss(x, x, tau=2.0)
    with pytest.raises(ValueError, match="log_cosh: expected `reduction`"):
        log_cosh_loss(x, x, reduction="avg")  # type: ignore[arg-type]


def test_empty_batch_reduces_to_zero() -> None:
    for name in ROBUST:
        prediction = torch.zeros(0, 3, requires_grad=True)
        value = build_loss(name)(prediction, torch.zeros(0, 3))
        assert value.item() == 0.0
        value.backward()  # still attached to the graph
