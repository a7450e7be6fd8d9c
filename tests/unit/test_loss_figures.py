"""lossforge.evaluation.loss_figures: the plotted numbers (not pixels), and `lossforge plot`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from lossforge.commands.plot import main
from lossforge.evaluation.loss_figures import loss_curves, loss_figure, probe, trained_loss_figure
from lossforge.losses.classification import CrossEntropyLoss, FocalLoss, HingeLoss
from lossforge.losses.metric import ContrastiveLoss, TripletLoss
from lossforge.losses.regression import HuberLoss, L1Loss, L2Loss
from lossforge.registry import LOSSES


def away_from(x: Tensor, *kinks: float, gap: float = 1e-6) -> Tensor:
    """Points not at a kink, where the derivative is one-sided."""
    mask = torch.ones_like(x, dtype=torch.bool)
    for kink in kinks:
        mask &= (x - kink).abs() > gap
    return mask


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_derivative_is_the_residual_inside_delta_and_clipped_outside(delta: float) -> None:
    r, values, derivatives = probe(HuberLoss(delta=delta), "regression")
    inside = r.abs() < delta
    torch.testing.assert_close(derivatives[inside], r[inside])
    torch.testing.assert_close(derivatives[~inside], delta * r[~inside].sign())
    torch.testing.assert_close(values[inside], r[inside] ** 2 / 2)


def test_l1_derivative_is_the_sign_and_l2_derivative_is_twice_the_residual() -> None:
    r, values, derivatives = probe(L1Loss(), "regression")
    kept = away_from(r, 0.0)
    torch.testing.assert_close(derivatives[kept], r[kept].sign())
    torch.testing.assert_close(values, r.abs())
    r, values, derivatives = probe(L2Loss(), "regression")  # lossforge's l2 is r² (no ½)
    torch.testing.assert_close(values, r**2)
    torch.testing.assert_close(derivatives, 2 * r)


def test_the_robust_losses_are_drawn_from_the_registry_with_their_influence_functions() -> None:
    """The plot needs nothing of its own for them: the derivative panel is each loss's influence function
    (against r = prediction - target, so the sign flips against ψ(target - prediction))."""
    low, high = -12.0, 12.0
    r, values, derivatives = probe(LOSSES.build("charbonnier", epsilon=0.5), "regression", low=low, high=high)
    torch.testing.assert_close(values, torch.sqrt(r**2 + 0.25) - 0.5)
    torch.testing.assert_close(derivatives, r / torch.sqrt(r**2 + 0.25))  # bounded by 1
    r, values, derivatives = probe(LOSSES.build("log_cosh"), "regression", low=low, high=high)
    torch.testing.assert_close(derivatives, torch.tanh(r))
    r, values, derivatives = probe(LOSSES.build("cauchy", c=2.0), "regression", low=low, high=high)
    torch.testing.assert_close(derivatives, r / (1 + (r / 2) ** 2))  # redescending: peaks at |r| = c
    r, values, derivatives = probe(LOSSES.build("tukey", c=3.0), "regression", low=low, high=high)
    beyond = r.abs() > 3.0
    assert bool((derivatives[beyond] == 0).all()) and bool((values[beyond] == 1.5).all())  # flat at c²/6
    r, values, derivatives = probe(LOSSES.build("quantile", tau=0.8), "regression", low=low, high=high)
    kept = away_from(r, 0.0)
    # prediction above the target (r > 0) is over-prediction: slope 1 - τ; below: -τ
    torch.testing.assert_close(derivatives[kept], torch.where(r[kept] > 0, 0.2, -0.8).to(r.dtype))


@pytest.mark.parametrize("name", ["charbonnier", "log_cosh", "cauchy", "quantile"])
def test_the_robust_losses_titles_are_their_typeset_formulas(name: str) -> None:
    (curve,) = loss_curves(LOSSES.build(name), points=5)
    assert curve.formula.startswith("$\\ell_i = \\sum_d"), curve.formula


def test_the_command_line_draws_the_robust_family(tmp_path) -> None:
    out = tmp_path / "robust.png"
    assert main(["loss=l1,charbonnier,cauchy,tukey", "--points", "21", "--range", "-8", "8", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_hinge_is_zero_beyond_the_margin_and_has_slope_minus_one_inside() -> None:
    margin, values, derivatives = probe(HingeLoss(margin=1.0), "binary")
    beyond, inside = margin > 1.0 + 1e-6, margin < 1.0 - 1e-6
    assert torch.all(values[beyond] == 0) and torch.all(derivatives[beyond] == 0)
    torch.testing.assert_close(derivatives[inside], -torch.ones_like(margin[inside]))
    torch.testing.assert_close(values[inside], 1.0 - margin[inside])


def test_a_plus_minus_one_loss_gets_minus_one_for_its_negative_example() -> None:
    # l2 on ±1 targets: (1 - y f)² for either label; were its negative target 0, it would be f² instead.
    margin, positive, _ = probe(L2Loss(), "binary")
    _, negative, _ = probe(L2Loss(), "binary", negative=True)
    torch.testing.assert_close(positive, (1 - margin) ** 2)
    torch.testing.assert_close(negative, positive)
    assert [curve.series for curve in loss_curves(L2Loss(), "binary")] == [""]  # one line: both coincide


def test_an_asymmetric_binary_loss_draws_its_negative_example_too() -> None:
    curves = loss_curves(FocalLoss(alpha=0.25), "binary", points=21)
    assert [curve.series for curve in curves] == ["y = 1", "y = 0"]
    assert not torch.allclose(curves[0].values, curves[1].values)


def test_focal_at_gamma_zero_is_cross_entropy_and_lower_for_gamma_above_zero() -> None:
    p_t, cross_entropy, ce_derivatives = probe(CrossEntropyLoss(), "multiclass")
    torch.testing.assert_close(cross_entropy, -p_t.log())
    torch.testing.assert_close(ce_derivatives, -1 / p_t)
    _, focal_zero, focal_zero_derivatives = probe(FocalLoss(gamma=0.0), "multiclass")
    torch.testing.assert_close(focal_zero, cross_entropy)
    torch.testing.assert_close(focal_zero_derivatives, ce_derivatives)
    confident = p_t > 0.5
    for gamma in (0.5, 1.0, 2.0, 5.0):
        _, focal, _ = probe(FocalLoss(gamma=gamma), "multiclass")
        assert torch.all(focal[confident] < cross_entropy[confident])
        torch.testing.assert_close(focal, -((1 - p_t) ** gamma) * p_t.log())


def test_contrastive_pulls_positives_and_stops_pushing_negatives_beyond_the_margin() -> None:
    d, positive, positive_derivatives = probe(ContrastiveLoss(margin=1.0), "metric")
    torch.testing.assert_close(positive, d**2)
    torch.testing.assert_close(positive_derivatives, 2 * d)
    d, negative, negative_derivatives = probe(ContrastiveLoss(margin=1.0), "metric", negative=True)
    beyond, inside = d > 1.0 + 1e-6, d < 1.0 - 1e-6
    assert torch.all(negative[beyond] == 0) and torch.all(negative_derivatives[beyond] == 0)
    torch.testing.assert_close(negative[inside], (1 - d[inside]) ** 2)


def test_triplet_against_the_negative_distance_at_a_fixed_positive_distance() -> None:
    # 1-D points a = 0, p = 1, n = -d: with squared Euclidean distances, [m + 1 - d²]_+.
    d, values, derivatives = probe(TripletLoss(margin=0.2, distance="squared_euclidean"), "metric")
    torch.testing.assert_close(values, (0.2 + 1 - d**2).clamp_min(0))
    kept = away_from(d, 1.2**0.5, gap=1e-2)
    torch.testing.assert_close(derivatives[kept], torch.where(d[kept] ** 2 < 1.2, -2 * d[kept], 0.0))


class ShiftedSquare(nn.Module):
    """A loss a plugin might ship, knowing nothing of plots: (prediction - target - shift)²."""

    tasks: ClassVar[tuple[str, ...]] = ("regression",)

    def __init__(self, *, shift: float = 0.5, reduction: str = "mean") -> None:
        super().__init__()
        self.shift, self.reduction = shift, reduction

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = (prediction - target - self.shift) ** 2
        return values if self.reduction == "none" else values.mean()


@pytest.fixture
def plugin_loss() -> Iterator[str]:
    LOSSES.refresh()
    LOSSES.register("shifted_square", ShiftedSquare, distribution="test")
    yield "shifted_square"
    LOSSES.refresh()


def test_a_plugin_loss_is_plotted_with_no_code_of_its_own(plugin_loss: str, tmp_path) -> None:
    r, values, derivatives = probe(LOSSES.build(plugin_loss, shift=1.0), "regression")
    torch.testing.assert_close(values, (r - 1) ** 2)
    torch.testing.assert_close(derivatives, 2 * (r - 1))
    assert main([f"loss={plugin_loss}", "loss.shift=0,2", "--points", "11", "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0


def test_the_figure_has_a_value_and_a_derivative_panel_with_labels_and_a_legend() -> None:
    figure = loss_figure(loss_curves(HuberLoss(delta=0.5), points=11, label="huber (delta=0.5)"))
    value_panel, derivative_panel = figure.axes
    assert value_panel.get_legend().get_texts()[0].get_text() == "huber (delta=0.5)"
    assert "residual" in value_panel.get_xlabel() and "d\\ell" in derivative_panel.get_ylabel()
    assert figure._suptitle is not None and figure._suptitle.get_text().startswith("huber:")


def test_trained_loss_figure_leaves_the_training_loss_as_it_was() -> None:
    loss = ContrastiveLoss(margin=2.0)
    figure = trained_loss_figure(loss, "metric", parameters={"margin": 2.0, "distance": "euclidean"})
    assert loss.reduction == "mean"
    assert figure.axes[0].get_legend().get_texts()[0].get_text() == "contrastive (margin=2), positive pair"


def test_the_command_line_writes_png_and_svg(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("loss.png", "loss.svg"):
        out = tmp_path / "plots" / name
        assert main(["loss=l1,l2,huber", "loss.delta=0.5,2", "--points", "21", "--out", str(out)]) == 2
        assert main(["loss=huber", "loss.delta=0.5,2", "--points", "21", "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    assert (tmp_path / "plots" / "loss.svg").read_text().lstrip().startswith("<?xml")
    assert "l1' has no parameter 'delta'" in capsys.readouterr().err


def test_a_misspelt_loss_name_exits_non_zero_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loss=focall", "--out", "unused.png"]) != 0
    assert "Did you mean 'focal'" in capsys.readouterr().err
    assert main(["loss=focal", "loss.gamme=1", "--out", "unused.png"]) != 0
    assert "Did you mean 'gamma'" in capsys.readouterr().err


def test_a_task_the_loss_does_not_declare_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loss=hinge", "--task", "multiclass", "--out", "unused.png"]) == 1
    assert "declares the tasks binary" in capsys.readouterr().err


PROXY_LOSSES = ("arcface", "cosface", "normalized_softmax", "proxy_nca", "proxy_anchor")


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_a_proxy_loss_grows_as_the_embedding_turns_away_from_its_proxy(name: str, tmp_path) -> None:
    loss = LOSSES.build(name)
    loss.prepare(targets=torch.tensor([0, 1]), num_classes=10, embedding_dim=64)  # a run's proxies: any size
    theta, values, derivatives = probe(loss, "metric", points=41)
    assert theta[0] == 0 and torch.isclose(theta[-1], torch.tensor(torch.pi, dtype=torch.float64))
    assert torch.isfinite(values).all() and torch.isfinite(derivatives).all()
    assert (values.diff() >= -1e-9).all() and values[-1] > values[0] + 1.0
    assert tuple(loss.proxies.shape) == (10, 64)  # the probe worked on a copy
    assert main([f"loss={name}", "--points", "11", "--out", str(tmp_path / "p.png")]) == 0


def test_arcface_against_its_formula_at_one_angle() -> None:
    """θ = 2 from its own proxy, π − 2 from the other's (the probe's proxies are opposite):
    ℓ = −log softmax(s·cos(θ + m), s·cos(π − θ))₀ with m = 0.5, s = 64."""
    _, values, _ = probe(LOSSES.build("arcface", margin=0.5, scale=64.0), "metric", low=2.0, high=2.0, points=1)
    own, other = 64 * math.cos(2.0 + 0.5), 64 * math.cos(math.pi - 2.0)
    expected = other - own + math.log1p(math.exp(own - other))  # log(e^own + e^other) − own, stably
    assert values.item() == pytest.approx(expected, rel=1e-9)
