"""Any registered loss drawn the way the lecture draws it: its value and its derivative along one axis.

The axis follows from the task the loss is plotted for:

* `regression` — the residual $r$ = prediction − target (target 0, prediction $r$);
* `binary` and `multilabel` — the margin $y f$: a positive example (target 1, score $f$)
  and, drawn only where it differs, a negative one (target 0, or −1 for a loss that declares
  `binary_target_encoding = "plus_minus_one"`, score $-f$); a multilabel loss sees one label;
* `multiclass` — $p_t$, the probability of the true class: a 2-class logit pair
  `(logit(p_t), 0)` whose softmax gives $p_t$ (the focal-loss paper's Figure 1);
* `metric` — the distance between embeddings. A pair loss is called on a 2-point batch at distance
  $d$, once with the same label (positive pair) and once with different labels (negative pair); a
  triplet loss on a 3-point batch, against $\\|a - n\\|$ with $\\|a - p\\| = 1$ fixed. The
  embeddings are 1-D points, or 2-D unit vectors at an angle for a loss whose `distance` is
  `"cosine"` (1-D points have no angle between them). A proxy loss (one whose learnable parameters are
  class `proxies` `(C, D)`: `arcface`, `proxy_anchor`, …) is drawn against the angle between one
  unit embedding and its own class's proxy, with two classes whose proxies point opposite ways — the loss's
  shape (margin, scale), whatever proxies a run has learnt.

The values come from the loss module itself with `reduction="none"` on a batch of points along the axis,
and the derivatives from `torch.autograd.grad` with respect to the axis variable, so a plugin loss is
plotted with no plotting code of its own. [probe][lossforge.evaluation.loss_figures.probe] and
[loss_curves][lossforge.evaluation.loss_figures.loss_curves] are plain numbers;
[loss_figure][lossforge.evaluation.loss_figures.loss_figure] draws them (matplotlib is imported only there, headless);
[plot_losses][lossforge.evaluation.loss_figures.plot_losses] does it all for a command line's overrides
(`lossforge plot`, [lossforge.commands.plot][], is the command).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lossforge.contract import Task, loss_traits, prepare_loss
from lossforge.registry import LOSSES, constructor_parameters
from lossforge.tasks import spec_for

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")
DEFAULT_OUT = Path("outputs/plots/loss.png")


@dataclass(frozen=True)
class Axis:
    """One x-axis: what a point on it means and the range drawn unless told otherwise."""

    label: str  # the x-axis label
    symbol: str  # the axis variable in mathtext, for the derivative's label dℓ/d<symbol>
    low: float
    high: float
    derivative_limits: tuple[float, float] | None = None
    """Where the derivative panel is cut when the curves run off (−1/p_t as p_t → 0); `None`: never."""


RESIDUAL = Axis("residual r = prediction − target", "r", -3.0, 3.0)
MARGIN = Axis("margin y·f (label y, score f)", "(yf)", -3.0, 3.0)
TRUE_CLASS = Axis("p_t, softmax probability of the true class (2 classes)", "p_t", 0.01, 0.99, (-10.0, 1.0))
# From 0.01: the Euclidean distance has no derivative at 0 (torch's is 0 there), a glitch, not the loss's.
PAIR_DISTANCE = Axis("distance d between the pair's 1-D embeddings", "d", 0.01, 3.0)
PAIR_ANGLE = Axis("angle θ between the pair's unit embeddings (rad)", r"\theta", 0.0, math.pi)
NEGATIVE_DISTANCE = Axis("distance d(a, n) to the negative, d(a, p) = 1 (1-D embeddings)", "d_{an}", 0.0, 3.0)
NEGATIVE_ANGLE = Axis("angle θ(a, n) to the negative, θ(a, p) = 1 rad (unit embeddings)", r"\theta_{an}", 0.0, math.pi)
PROXY_ANGLE = Axis("angle θ between the unit embedding and its class's proxy (rad)", r"\theta_y", 0.0, math.pi)
PROBE_PROXIES = ((1.0, 0.0), (-1.0, 0.0))
"""The probe's proxies for a proxy loss: class 0 at angle 0, class 1 opposite it (2-D unit vectors)."""
ANCHOR_TO_POSITIVE = 1.0
"""The fixed distance (or angle) between a triplet's anchor and positive."""

_FIXED_AXES = {Task.REGRESSION: RESIDUAL, Task.BINARY: MARGIN, Task.MULTILABEL: MARGIN, Task.MULTICLASS: TRUE_CLASS}


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


# -- which task, which axis ------------------------------------------------------------------------------


def plot_task(loss: Any, task: str | None = None) -> Task:
    """The task a loss is plotted for: `task` when the loss declares it, else its first declared task.

    ```pycon
    >>> from lossforge.losses.classification import FocalLoss
    >>> plot_task(FocalLoss()), plot_task(FocalLoss(), "binary")
    (<Task.MULTICLASS: 'multiclass'>, <Task.BINARY: 'binary'>)

    ```
    """
    traits = loss_traits(loss)
    if task is None:
        return traits.tasks[0]
    if Task(task) not in traits.tasks:
        raise ValueError(
            f"loss {traits.name!r} declares the tasks {', '.join(traits.tasks)}; it cannot be plotted for {task!r}."
        )
    return Task(task)


def _cosine(loss: Any) -> bool:
    return loss_traits(loss).distance == "cosine"


def _proxies(loss: Any) -> bool:
    """Whether `loss` keeps class proxies as `proxies` (lossforge's proxy losses; `None` until prepared)."""
    return isinstance(loss, torch.nn.Module) and hasattr(loss, "proxies")


def _triplets(loss: Any) -> bool:
    return loss_traits(loss).tuple_kind == "triplet"


def axis_for(loss: Any, task: str) -> Axis:
    """The x-axis `loss` is drawn against for `task` (see the module's docstring).

    ```pycon
    >>> from lossforge.losses.metric import TripletLoss
    >>> axis_for(TripletLoss(), "metric").symbol, axis_for(TripletLoss(), "regression").symbol
    ('d_{an}', 'r')

    ```
    """
    if Task(task) is not Task.METRIC:
        return _FIXED_AXES[Task(task)]
    if _proxies(loss):
        return PROXY_ANGLE
    if _triplets(loss):
        return NEGATIVE_ANGLE if _cosine(loss) else NEGATIVE_DISTANCE
    return PAIR_ANGLE if _cosine(loss) else PAIR_DISTANCE


def has_negative(loss: Any, task: str) -> bool:
    """Whether [probe][lossforge.evaluation.loss_figures.probe] has a `negative` variant for `task`: a negative example
    of a binary or multilabel loss, a negative pair of a metric pair loss.

    ```pycon
    >>> from lossforge.losses.regression import HuberLoss
    >>> has_negative(HuberLoss(), "regression")
    False

    ```
    """
    task = Task(task)
    if task is Task.METRIC:
        return not (_triplets(loss) or _proxies(loss))
    return task in (Task.BINARY, Task.MULTILABEL)


# -- the probe: numbers only ---------------------------------------------------------------------------


def _per_sample(loss: Any) -> Any:
    """A CPU copy of `loss` that returns per-sample values, leaving the caller's (training) loss as it is."""
    probe_loss = copy.deepcopy(loss)
    if isinstance(probe_loss, torch.nn.Module):
        probe_loss = probe_loss.cpu()
    if getattr(probe_loss, "reduction", "none") != "none":
        probe_loss.reduction = "none"
    return probe_loss


def _supervised(task: Task, classes: int = 2) -> Callable[[Tensor, str, bool], tuple[Tensor, Tensor]]:
    def regression(x: Tensor, encoding: str, negative: bool) -> tuple[Tensor, Tensor]:
        return x, torch.zeros_like(x)  # prediction r, target 0

    def margin(x: Tensor, encoding: str, negative: bool) -> tuple[Tensor, Tensor]:
        labels = torch.zeros_like(x) if negative else torch.ones_like(x)
        target = spec_for(task).loss_target(labels, encoding=encoding).to(x.dtype)  # 0/1 or ±1
        scores = -x if negative else x  # so that y·f is x for either label
        if task is Task.MULTILABEL:
            return scores[:, None], target[:, None]  # (N, 1): one label
        return scores, target

    def true_class(x: Tensor, encoding: str, negative: bool) -> tuple[Tensor, Tensor]:
        # Class 0 is true, the other classes' logits 0: softmax(...)[0] = x when its logit is
        # log(x (C - 1) / (1 - x)) — for C = 2, logit(x).
        true_logit = torch.logit(x) + math.log(classes - 1)
        others = torch.zeros(x.shape[0], classes - 1, dtype=x.dtype)
        return torch.cat([true_logit[:, None], others], dim=1), torch.zeros(x.shape[0], dtype=torch.long)  # (N, C)

    return {Task.REGRESSION: regression, Task.MULTICLASS: true_class}.get(task, margin)


def _embedding(offset: Tensor, cosine: bool) -> Tensor:
    """A point at `offset` from the origin (1-D), or the unit vector at angle `offset` (2-D)."""
    if cosine:
        return torch.stack([torch.cos(offset), torch.sin(offset)])  # (2,)
    return offset[None]  # (1,)


def _proxy_value(loss: Any, x: Tensor) -> Tensor:
    """The loss of one unit embedding of class 0 at angle `x` (0-d) from its proxy (`PROBE_PROXIES`)."""
    return loss(_embedding(x, cosine=True)[None], torch.tensor([0]), None).sum()  # (1, 2)


def _metric_value(loss: Any, x: Tensor, *, cosine: bool, triplet: bool, negative: bool) -> Tensor:
    """The loss of one tiny batch built at `x` (0-d): the sum of what `reduction="none"` returns
    (for one pair or triplet, its loss; a per-anchor loss sums over the batch's anchors)."""
    zero, empty = torch.zeros_like(x), torch.zeros(0, dtype=torch.long)
    indices: tuple[Tensor, ...]
    first, second, third = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    if triplet:
        anchor_to_positive = torch.full_like(x, ANCHOR_TO_POSITIVE)
        points = [_embedding(zero, cosine), _embedding(anchor_to_positive, cosine), _embedding(-x, cosine)]
        labels, indices = torch.tensor([0, 0, 1]), (first, second, third)
    else:
        points = [_embedding(zero, cosine), _embedding(x, cosine)]
        labels = torch.tensor([0, 1]) if negative else torch.tensor([0, 0])
        indices = (empty, empty, first, second) if negative else (first, second, empty, empty)
    return loss(torch.stack(points), labels, indices).sum()  # points: (2 or 3, D)


def probe(
    loss: Any,
    task: str,
    *,
    negative: bool = False,
    points: int = 201,
    low: float | None = None,
    high: float | None = None,
    classes: int = 2,
) -> tuple[Tensor, Tensor, Tensor]:
    """`(x, values, derivatives)` of `loss` along its axis for `task`
    ([axis_for][lossforge.evaluation.loss_figures.axis_for]), float64.

    The loss is called on a batch of points along the axis with `reduction="none"` (on a copy: the
    given module is not changed) and differentiated with `torch.autograd.grad` with respect to the axis
    variable.

    Args:
        loss: a loss module (any reduction); it must declare `task`.
        task: `"regression"`, `"binary"`, `"multiclass"`, `"multilabel"` or `"metric"`.
        negative: a negative example (binary, multilabel) or a negative pair (metric pair losses); see
            [has_negative][lossforge.evaluation.loss_figures.has_negative].
        points: how many points along the axis.
        low: where the axis starts; default: the axis's own.
        high: where the axis ends; default: the axis's own.
        classes: multiclass: how many classes the logits have (a loss prepared for C classes needs C);
            the curve against p_t is the same for any C for a loss that treats wrong classes alike.

    Returns:
        `x`, the loss at each point, and its derivative $d\\ell/dx$, each `(points,)`.

    Examples:
        >>> from lossforge.losses.regression import L2Loss
        >>> x, values, derivatives = probe(L2Loss(), "regression", points=3, low=-1.0, high=1.0)
        >>> values.tolist(), derivatives.tolist()
        ([1.0, 0.0, 1.0], [-2.0, 0.0, 2.0])
    """
    task = plot_task(loss, task)
    if negative and not has_negative(loss, task):
        raise ValueError(f"loss {loss_traits(loss).name!r} has no negative example or pair to probe for {task}.")
    axis = axis_for(loss, task)
    low, high = axis.low if low is None else low, axis.high if high is None else high
    x = torch.linspace(low, high, points, dtype=torch.float64, requires_grad=True)  # (N,)
    probe_loss = _per_sample(loss)
    if task is Task.METRIC and _proxies(loss):
        probe_loss.proxies = torch.nn.Parameter(torch.tensor(PROBE_PROXIES, dtype=torch.float64))  # (2, 2)
        values = torch.stack([_proxy_value(probe_loss, point) for point in x])  # (N,)
    elif task is Task.METRIC:
        options = {"cosine": _cosine(loss), "triplet": _triplets(loss), "negative": negative}
        values = torch.stack([_metric_value(probe_loss, point, **options) for point in x])  # (N,)
    else:
        prediction, target = _supervised(task, classes)(x, loss_traits(loss).binary_target_encoding, negative)
        values = probe_loss(prediction, target)
        if values.shape != x.shape:
            raise ValueError(
                f"loss {loss_traits(loss).name!r} with reduction='none' should return one value per sample, "
                f"{tuple(x.shape)}, for {tuple(prediction.shape)} predictions; got {tuple(values.shape)}."
            )
    if values.requires_grad:  # each value depends on its own point only, so one backward gives every dℓ/dx
        (derivatives,) = torch.autograd.grad(values.sum(), x, allow_unused=True, materialize_grads=True)
    else:  # a loss that is constant along the axis
        derivatives = torch.zeros_like(x)
    return x.detach(), values.detach().to(torch.float64), derivatives.detach()


# -- labels ---------------------------------------------------------------------------------------------


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


# -- the figure -----------------------------------------------------------------------------------------


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


# -- the command line: `lossforge plot` ---------------------------------------------------------------


def expand(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of Hydra sweep overrides (`loss=a,b loss.delta=1,2`), as a multirun expands them.

    ```pycon
    >>> expand(["loss=l1,huber", "loss.delta=1"])
    [['loss=l1', 'loss.delta=1'], ['loss=huber', 'loss.delta=1']]

    ```
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return BasicSweeper.split_arguments(parsed, None)[0]


def _check_parameters(combination: Sequence[str], name: str) -> None:
    """The registry's teaching error for a `loss.<parameter>` the loss does not have (Hydra's own only
    says it could not override it)."""
    accepted = LOSSES.parameters(name)
    for override in combination:
        key, _, value = override.partition("=")
        parameter = key.lstrip("+~").removeprefix("loss.")
        if key.lstrip("+~").startswith("loss.") and parameter not in accepted:
            LOSSES.build(name, **{parameter: value})  # raises: "has no parameter …, did you mean …"


def build_for_plot(
    combination: Sequence[str], task: str | None, *, always: Sequence[str] = ()
) -> tuple[Any, Task, str]:
    """Compose one combination of overrides, build its loss (per sample, prepared on the probe's balanced
    toy targets, so class weights are 1) and return it with its task and its legend."""
    from omegaconf import OmegaConf

    from lossforge.hydra_options import compose

    cfg = compose(list(combination))
    name = cfg.loss.name
    config = OmegaConf.to_container(cfg.loss, resolve=True)
    assert isinstance(config, dict)
    parameters: dict[str, Any] = {str(key): value for key, value in config.items() if key != "name"}
    loss = LOSSES.build(name, **{**parameters, "reduction": "none"})
    chosen = plot_task(loss, task)
    classes = 2 if spec_for(chosen).class_labels or chosen is Task.METRIC else 1
    _, targets = spec_for(chosen).example_inputs(
        batch=4, num_classes=classes, dim=1, dtype=torch.float32, generator=torch.Generator().manual_seed(0)
    )
    embedding_dim = len(PROBE_PROXIES[0]) if chosen is Task.METRIC else None  # a proxy loss sizes its proxies
    prepare_loss(loss, targets=targets, num_classes=classes, embedding_dim=embedding_dim)
    defaults = {key: parameter.default for key, parameter in LOSSES.parameters(name).items()}
    return loss, chosen, describe(name, parameters, defaults, always=always)


def plot_losses(
    overrides: Sequence[str],
    *,
    task: str | None = None,
    points: int = 201,
    low: float | None = None,
    high: float | None = None,
) -> Figure:
    """Each loss the Hydra `overrides` name — comma-separated values overlay each combination
    (`["loss=focal", "loss.gamma=0,2"]`) — and its derivative, against its task's axis (`task`: the first
    task the losses share, else each loss's own), as one figure.

    Raises:
        RegistryError: an unknown loss, or a parameter it does not have (with "did you mean").
        hydra.errors.HydraException: overrides Hydra cannot compose.
        ValueError, TypeError: a loss that cannot be probed for `task`.

    Examples:
        >>> plot_losses(["loss=l1,huber"], points=11).axes[0].get_xlabel()
        'residual r = prediction − target'
    """
    swept = [key.lstrip("+~").removeprefix("loss.") for key, *_ in (o.split("=", 1) for o in overrides)]
    curves: list[Curve] = []
    combinations = expand(overrides)
    task = task or common_task([_loss_name(combination) for combination in combinations])
    for combination in combinations:
        name = next((o.split("=", 1)[1] for o in combination if o.split("=", 1)[0] == "loss"), None)
        if name is not None:
            LOSSES.info(name)
            _check_parameters(combination, name)
        loss, loss_task, label = build_for_plot(combination, task, always=swept)
        curves += loss_curves(loss, loss_task, label=label, points=points, low=low, high=high)
    return loss_figure(curves)


def _loss_name(combination: Sequence[str]) -> str:
    """The loss a combination of overrides names (the config's default, cross-entropy, when none)."""
    return next((o.split("=", 1)[1] for o in combination if o.split("=", 1)[0] == "loss"), "cross_entropy")


def common_task(names: Sequence[str]) -> str | None:
    """The first task of the first loss that every named loss declares, so one figure shares one axis
    (`hinge,bce,focal` → binary: the margin); `None` when they share none (each gets its own row).

    ```pycon
    >>> common_task(["focal"]), common_task(["hinge", "bce", "focal"]), common_task(["l1", "focal"])
    ('multiclass', 'binary', None)

    ```
    """
    declared = [loss_traits(LOSSES.load(name)).tasks for name in dict.fromkeys(names)]
    return next((str(task) for task in declared[0] if all(task in tasks for tasks in declared)), None)
