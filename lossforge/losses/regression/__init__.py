r"""Regression losses: L1, L2, Huber and the robust family, as pure functions and then as registered modules.

The robust family continues the lecture's "L1 is robust to outliers" story. What makes a loss robust is
its *influence function* $\psi(r) = \rho'(r)$, how hard one residual pulls on the fit:

* unbounded: L2 ($\psi = 2r$) — one far outlier can move the fit anywhere;
* bounded: L1, Huber, Charbonnier (pseudo-Huber), log-cosh — an outlier pulls, but no harder than a
  fixed amount;
* redescending: Cauchy, Tukey's biweight — the pull *falls* back towards 0 for large residuals, so far
  outliers are all but ignored (for Tukey exactly ignored beyond $c$). The price: these losses
  are not convex, and a fit started far from the data can stall (see
  [TukeyLoss][lossforge.losses.regression.robust.TukeyLoss]);
* asymmetric: the quantile (pinball) loss estimates a quantile rather than a centre; $\tau = 0.5$
  is half of L1, the median.

Every function takes `prediction` and `target` of the same shape, `(N,)` or `(N, D)`. With `D`
outputs the per-sample loss is the **sum** over the outputs (for L2 that is the squared Euclidean
distance), the same convention `bce` uses over labels. `torch.nn`'s losses average over all `N·D`
elements instead, so for `D > 1` their `"mean"` is ours divided by `D`.

One module per sub-family — [classic][lossforge.losses.regression.classic] (L1, L2, Huber) and
[robust][lossforge.losses.regression.robust] (Charbonnier, log-cosh, Cauchy, Tukey, quantile) — with what they
share (input checks, reductions) in [inputs][lossforge.losses.regression.inputs]. The names below are importable
from here.
"""

from lossforge.losses.regression.classic import HuberLoss, L1Loss, L2Loss, huber_loss, l1_loss, l2_loss
from lossforge.losses.regression.robust import (
    CauchyLoss,
    CharbonnierLoss,
    LogCoshLoss,
    QuantileLoss,
    TukeyLoss,
    cauchy_loss,
    charbonnier_loss,
    log_cosh_loss,
    quantile_loss,
    tukey_loss,
)

__all__ = [
    "CauchyLoss",
    "CharbonnierLoss",
    "HuberLoss",
    "L1Loss",
    "L2Loss",
    "LogCoshLoss",
    "QuantileLoss",
    "TukeyLoss",
    "cauchy_loss",
    "charbonnier_loss",
    "huber_loss",
    "l1_loss",
    "l2_loss",
    "log_cosh_loss",
    "quantile_loss",
    "tukey_loss",
]
