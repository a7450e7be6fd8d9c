"""The figure: two panels per axis — the value and the derivative — drawn from the curves with matplotlib,
imported only here, headless ([loss_figure][lossforge.evaluation.loss_figures.drawing.loss_figure]); and a
trained run's loss ([trained_loss_figure][lossforge.evaluation.loss_figures.drawing.trained_loss_figure]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lossforge.contract import loss_traits
from lossforge.evaluation.loss_figures.axes import Axis
from lossforge.evaluation.loss_figures.curves import Curve, describe, loss_curves
from lossforge.registry import constructor_parameters

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _limits(values: Sequence[Tensor], cut: tuple[float, float] | None) -> tuple[float, float] | None:
    finite = torch.cat([v[torch.isfinite(v)] for v in values])
    if cut is None or finite.numel() == 0:
        return None
    low, high = max(float(finite.min()), cut[0]), min(float(finite.max()), cut[1])
    pad = 0.05 * (high - low or 1.0)
    return low - pad, high + pad


def loss_figure(curves: Sequence[Curve], *, title: str | None = None) -> Figure:
    """Two panels per axis — the value and the derivative — with one line per curve, a legend, axis labels
    and, as the title, the formula of each loss drawn (or `title`).

    Curves on different axes (a regression and a binary loss, say) get a row of panels each.

    Examples:
        >>> from lossforge.losses.regression import HuberLoss, L1Loss
        >>> figure = loss_figure(loss_curves(L1Loss(), points=11) + loss_curves(HuberLoss(), points=11))
        >>> [axes.get_xlabel() for axes in figure.axes][:1], len(figure.axes)
        (['residual r = prediction − target'], 2)
    """
    from matplotlib.figure import Figure  # a bare Figure needs no pyplot, no display: headless anywhere

    rows: dict[Axis, list[Curve]] = {}
    for curve in curves:
        rows.setdefault(curve.axis, []).append(curve)
    figure = Figure(figsize=(10, 0.6 + 3.4 * len(rows)), layout="constrained")
    panels = figure.subplots(len(rows), 2, squeeze=False)
    for (axis, row), (value_panel, derivative_panel) in zip(rows.items(), panels, strict=True):
        labels = list(dict.fromkeys(curve.label for curve in row))
        for curve in row:
            colour = f"C{labels.index(curve.label) % 10}"
            style = "--" if curve.series in ("negative pair", "y = 0", "y = −1") else "-"
            legend = f"{curve.label}, {curve.series}" if curve.series else curve.label
            value_panel.plot(curve.x, curve.values, style, color=colour, label=legend)
            derivative_panel.plot(curve.x, curve.derivatives, style, color=colour)
        for panel in (value_panel, derivative_panel):
            panel.axhline(0.0, color="grey", linewidth=0.6)
            panel.set_xlabel(axis.label)
            panel.grid(alpha=0.3)
        value_panel.set_ylabel(r"loss $\ell$")
        derivative_panel.set_ylabel(rf"derivative $d\ell / d{axis.symbol}$")
        limits = _limits([curve.derivatives for curve in row], axis.derivative_limits)
        if limits is not None:
            derivative_panel.set_ylim(*limits)
        value_panel.legend(fontsize=8)
    if title is None:
        formulas = dict.fromkeys(f"{curve.label.split(' (')[0]}: {curve.formula}" for curve in curves)
        title = "\n".join(formulas)
    figure.suptitle(title, fontsize=10)
    return figure


def trained_loss_figure(
    loss: Any, task: str, *, parameters: Mapping[str, Any] | None = None, classes: int = 2
) -> Figure:
    """The figure of the loss a run trains, for the run's artifacts (`loss.png`).

    Args:
        loss: the run's loss module (left unchanged: the probe works on a CPU copy).
        task: the task it trains.
        parameters: its config (`params(cfg.loss)`); those that differ from the defaults join the legend.
        classes: the dataset's classes (a loss prepared with per-class weights needs as many logits).

    Examples:
        >>> from lossforge.losses.classification import FocalLoss
        >>> figure = trained_loss_figure(FocalLoss(gamma=1.0), "multiclass", parameters={"gamma": 1.0})
        >>> figure.axes[0].get_legend().get_texts()[0].get_text()
        'focal (gamma=1)'
    """
    name = loss_traits(loss).name
    defaults = {key: parameter.default for key, parameter in constructor_parameters(type(loss)).items()}
    label = describe(name, parameters or {}, defaults)
    return loss_figure(loss_curves(loss, task, label=label, classes=classes))
