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
plotted with no plotting code of its own. [probe][lossforge.evaluation.loss_figures.probing.probe] and
[loss_curves][lossforge.evaluation.loss_figures.curves.loss_curves] are plain numbers;
[loss_figure][lossforge.evaluation.loss_figures.drawing.loss_figure] draws them (matplotlib is imported only
there, headless);
[plot_losses][lossforge.evaluation.loss_figures.plotting.plot_losses] does it all for a command line's overrides
(`lossforge plot`, [lossforge.commands.plot][], is the command).

The package, one job a module: `axes` (which task, which axis), `probing` (the numbers), `curves` (the
lines and their labels), `drawing` (the figure) and `plotting` (a command line's overrides to a figure).
Every public name is importable from here too.
"""

from lossforge.evaluation.loss_figures.axes import (
    ANCHOR_TO_POSITIVE,
    MARGIN,
    NEGATIVE_ANGLE,
    NEGATIVE_DISTANCE,
    PAIR_ANGLE,
    PAIR_DISTANCE,
    PROBE_PROXIES,
    PROXY_ANGLE,
    RESIDUAL,
    TRUE_CLASS,
    Axis,
    axis_for,
    has_negative,
    plot_task,
)
from lossforge.evaluation.loss_figures.curves import Curve, describe, formula, loss_curves
from lossforge.evaluation.loss_figures.drawing import loss_figure, trained_loss_figure
from lossforge.evaluation.loss_figures.plotting import (
    DEFAULT_OUT,
    FORMATS,
    build_for_plot,
    common_task,
    expand,
    plot_losses,
)
from lossforge.evaluation.loss_figures.probing import probe

__all__ = [
    "ANCHOR_TO_POSITIVE",
    "DEFAULT_OUT",
    "FORMATS",
    "MARGIN",
    "NEGATIVE_ANGLE",
    "NEGATIVE_DISTANCE",
    "PAIR_ANGLE",
    "PAIR_DISTANCE",
    "PROBE_PROXIES",
    "PROXY_ANGLE",
    "RESIDUAL",
    "TRUE_CLASS",
    "Axis",
    "Curve",
    "axis_for",
    "build_for_plot",
    "common_task",
    "describe",
    "expand",
    "formula",
    "has_negative",
    "loss_curves",
    "loss_figure",
    "plot_losses",
    "plot_task",
    "probe",
    "trained_loss_figure",
]
