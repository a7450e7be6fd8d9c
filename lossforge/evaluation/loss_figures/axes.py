"""Which task a loss is plotted for, and the x-axis that follows from it: the residual, the margin, the
probability of the true class, or a distance or angle between embeddings
([Axis][lossforge.evaluation.loss_figures.axes.Axis]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from lossforge.contract import Task, loss_traits


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
    """Whether [probe][lossforge.evaluation.loss_figures.probing.probe] has a `negative` variant for `task`: a
    negative example of a binary or multilabel loss, a negative pair of a metric pair loss.

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
