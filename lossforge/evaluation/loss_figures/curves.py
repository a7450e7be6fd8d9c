"""The lines of a loss figure: each loss's probed numbers with its label and formula
([loss_curves][lossforge.evaluation.loss_figures.curves.loss_curves]); the formula read from the loss's docstring.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lossforge.contract import Task, loss_traits
from lossforge.evaluation.loss_figures.axes import Axis, axis_for, has_negative, plot_task
from lossforge.evaluation.loss_figures.probing import probe


@dataclass(frozen=True)
class Curve:
    """One loss probed along one axis: the numbers a line of the figure is drawn from."""

    label: str  # the legend: the loss's name and its non-default parameters
    series: str  # "" or what tells this line from its loss's other lines ("negative pair", "y = 0")
    formula: str  # the title: a one-line formula in mathtext, or the loss's one-line summary
    axis: Axis
    x: Tensor  # (N,)
    values: Tensor  # (N,)
    derivatives: Tensor  # (N,) dℓ/dx


def _math_block(doc: str | None) -> list[str] | None:
    r"""The lines of the first display formula of a docstring, or `None` without one: a Markdown `$$` … `$$`
    block (lossforge's dialect) or a reStructuredText `.. math::` block (a plugin's older docstring).

    ```pycon
    >>> _math_block("Summary.\n\n    $$\n    a = b\n    $$\n")
    ['a = b']
    >>> _math_block("Summary.\n\n.. math::\n    a = b\n") is None
    False

    ```
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    for index, line in enumerate(lines):
        block: list[str] = []
        if line.strip() == "$$":
            for body in lines[index + 1 :]:
                if body.strip() == "$$":
                    return block
                block.append(body.strip())
            return block
        if line.strip() == ".. math::":
            for body in lines[index + 1 :]:
                if not body.strip():
                    if block:
                        break
                    continue
                block.append(body.strip())
            return block
    return None


def _summary(doc: str | None) -> str:
    """The docstring's first line in mathtext: Markdown code and cross-references become plain names
    (`` `name` `` and `[name][path]` → `name`); reStructuredText roles are read too.

    ```pycon
    >>> _summary("Focal loss with `alpha`, see [FocalLoss][lossforge.losses.classification.focal.FocalLoss].")
    'Focal loss with alpha, see FocalLoss.'

    ```
    """
    first = inspect.cleandoc(doc or "").split("\n", 1)[0]
    first = re.sub(r":math:`([^`]*)`", r"$\1$", first)
    first = re.sub(r":[\w:]+:`~?([^`]*)`", r"\1", first).replace("``", "")
    first = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", first)
    return first.replace("`", "")


def _renders(text: str) -> bool:
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(text)
    except ValueError:
        return False
    return True


def formula(loss: Any) -> str:
    r"""The title for `loss`: the first `.. math::` block of its class's docstring — or, without one,
    of its pure function's (`<name>_loss` or `<name>` in the class's module) — when that block is one
    line that matplotlib can typeset; else the class's one-line summary.

    ```pycon
    >>> from lossforge.losses.classification import FocalLoss
    >>> from lossforge.losses.regression import HuberLoss
    >>> print(formula(FocalLoss()))
    $\ell_i = -\alpha_t (1 - p_t)^\gamma \log p_t$
    >>> formula(HuberLoss())  # a two-line formula: the summary instead
    'Huber loss, registered as huber: L2 near zero, L1 in the tails.'

    ```
    """
    cls = loss if inspect.isclass(loss) else type(loss)
    name = loss_traits(loss).name
    module = sys.modules.get(cls.__module__)
    functions = [getattr(module, candidate, None) for candidate in (f"{name}_loss", name)]
    block = _math_block(cls.__doc__)
    for function in functions:
        if block is None and callable(function):
            block = _math_block(function.__doc__)
    summary = _summary(cls.__doc__) or name
    if block is not None and len(block) == 1 and _renders(f"${block[0]}$"):
        return f"${block[0]}$"
    return summary if _renders(summary) else summary.replace("$", "")


def describe(
    name: str, parameters: Mapping[str, Any], defaults: Mapping[str, Any], *, always: Sequence[str] = ()
) -> str:
    """The legend of a loss: its name and the parameters that differ from their defaults, or are named in
    `always` (those a command line sweeps, so every line of a sweep says its value).

    ```pycon
    >>> describe("huber", {"delta": 0.5, "reduction": "none"}, {"delta": 1.0, "reduction": "mean"})
    'huber (delta=0.5)'

    ```
    """
    changed = [
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in parameters.items()
        if key not in ("name", "reduction") and key in defaults and (value != defaults[key] or key in always)
    ]
    return f"{name} ({', '.join(changed)})" if changed else name


def _series_name(loss: Any, task: Task, negative: bool) -> str:
    if task is Task.METRIC:
        return "negative pair" if negative else "positive pair"
    negative_label = "−1" if loss_traits(loss).binary_target_encoding == "plus_minus_one" else "0"
    return f"y = {negative_label}" if negative else "y = 1"


def loss_curves(
    loss: Any,
    task: str | None = None,
    *,
    label: str | None = None,
    points: int = 201,
    low: float | None = None,
    high: float | None = None,
    classes: int = 2,
) -> list[Curve]:
    """Every line of `loss` for `task` (default: its first declared task): one, or two for a metric
    pair loss (positive and negative pair) and for a binary or multilabel loss whose negative example's
    curve differs from the positive's (`alpha`, `pos_weight`, asymmetric focusing).

    ```pycon
    >>> from lossforge.losses.metric import ContrastiveLoss
    >>> [curve.series for curve in loss_curves(ContrastiveLoss(), points=5)]
    ['positive pair', 'negative pair']

    ```
    """
    task = plot_task(loss, task)
    label = label or loss_traits(loss).name
    axis, title = axis_for(loss, task), formula(loss)

    def along_axis(negative: bool) -> tuple[Tensor, Tensor, Tensor]:
        return probe(loss, task, negative=negative, points=points, low=low, high=high, classes=classes)

    curves = [Curve(label, "", title, axis, *along_axis(False))]
    if has_negative(loss, task):
        other = Curve(label, _series_name(loss, task, True), title, axis, *along_axis(True))
        same = torch.allclose(curves[0].values, other.values) and torch.allclose(
            curves[0].derivatives, other.derivatives
        )
        if task is Task.METRIC or not same:
            curves = [dataclasses.replace(curves[0], series=_series_name(loss, task, False)), other]
    return curves
