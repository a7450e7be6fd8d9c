r"""Regression losses: L1, L2, Huber and the robust family, as pure functions and then as registered modules.

The robust family continues the lecture's "L1 is robust to outliers" story. What makes a loss robust is
its *influence function* $\psi(r) = \rho'(r)$, how hard one residual pulls on the fit:

* unbounded: L2 ($\psi = 2r$) — one far outlier can move the fit anywhere;
* bounded: L1, Huber, Charbonnier (pseudo-Huber), log-cosh — an outlier pulls, but no harder than a
  fixed amount;
* redescending: Cauchy, Tukey's biweight — the pull *falls* back towards 0 for large residuals, so far
  outliers are all but ignored (for Tukey exactly ignored beyond $c$). The price: these losses
  are not convex, and a fit started far from the data can stall (see
  [TukeyLoss][lossforge.losses.regression.TukeyLoss]);
* asymmetric: the quantile (pinball) loss estimates a quantile rather than a centre; $\tau = 0.5$
  is half of L1, the median.

Every function takes `prediction` and `target` of the same shape, `(N,)` or `(N, D)`. With `D`
outputs the per-sample loss is the **sum** over the outputs (for L2 that is the squared Euclidean
distance), the same convention `bce` uses over labels. `torch.nn`'s losses average over all `N·D`
elements instead, so for `D > 1` their `"mean"` is ours divided by `D`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import Loss, Reduction, as_float, check_reduction, input_error, reduce, shape


def _per_sample(values: Tensor) -> Tensor:
    """Elementwise losses `(N,)` or `(N, D)` → per-sample losses `(N,)`."""
    return values.sum(dim=1) if values.dim() == 2 else values


def _reduce_elementwise(
    elementwise: Callable[..., Tensor], prediction: Tensor, target: Tensor, reduction: str, **options: float
) -> Tensor:
    """Reduce torch's fused elementwise loss (one kernel forward and back, no temporaries) our way: summed
    over the `D` outputs of a sample, then over samples (`"mean"`: divided by `N`; 0 for no samples)."""
    if reduction == "none":
        return _per_sample(elementwise(prediction, target, reduction="none", **options))
    total = elementwise(prediction, target, reduction="sum", **options)
    return total / max(prediction.shape[0], 1) if reduction == "mean" else total


def _checked_target(loss_name: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Validate a regression pair and return the target in the prediction's dtype and device."""
    if not prediction.is_floating_point():
        raise input_error(loss_name, "a floating-point prediction", f"dtype {prediction.dtype}")
    if target.is_complex():
        raise input_error(loss_name, "a real-valued target", f"dtype {target.dtype}")
    # Equal shapes are required, not merely broadcastable ones: (N, 1) against (N,) silently broadcasts
    # to (N, N) in plain torch, the classic regression bug.
    if prediction.dim() not in (1, 2) or prediction.shape != target.shape:
        raise input_error(
            loss_name,
            "prediction and target of the same shape, (N,) or (N, D)",
            f"{shape(prediction)} and {shape(target)}",
        )
    return as_float(target, prediction)


def l1_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Absolute error, summed over outputs per sample.

    $$
    \ell_i = \sum_d |y_{id} - \hat y_{id}|
    $$

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> import torch
        >>> l1_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 5.0]))
        tensor(2.)
    """
    check_reduction("l1", reduction)
    return _reduce_elementwise(F.l1_loss, prediction, _checked_target("l1", prediction, target), reduction)


def l2_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Squared error, summed over outputs per sample.

    $$
    \ell_i = \sum_d (y_{id} - \hat y_{id})^2
    $$

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> import torch
        >>> l2_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 5.0]))
        tensor(5.)
    """
    check_reduction("l2", reduction)
    return _reduce_elementwise(F.mse_loss, prediction, _checked_target("l2", prediction, target), reduction)


def _check_delta(delta: float) -> float:
    if not delta > 0:  # also rejects NaN
        raise ValueError(f"huber: expected `delta` > 0, got {delta}")
    return float(delta)


def huber_loss(prediction: Tensor, target: Tensor, *, delta: float = 1.0, reduction: Reduction = "mean") -> Tensor:
    r"""Huber loss: quadratic for small residuals, linear (slope $\delta$) for large ones.

    $$
    \ell_i = \sum_d h_\delta(y_{id} - \hat y_{id}), \qquad
    h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
                                \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}
    $$

    `torch.nn.SmoothL1Loss(beta=b)` is this loss divided by `b`: `huber(delta=b) / b`; for
    `delta = 1` they coincide.

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        delta: where the quadratic part turns linear, `> 0`.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> import torch
        >>> huber_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0]), reduction="none")
        tensor([0.1250, 2.5000])
    """
    delta = _check_delta(delta)
    check_reduction("huber", reduction)
    target = _checked_target("huber", prediction, target)
    return _reduce_elementwise(F.huber_loss, prediction, target, reduction, delta=delta)


# -- the robust family -----------------------------------------------------------------------------


def _check_positive(loss_name: str, parameter: str, value: float, meaning: str) -> float:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{loss_name}: expected `{parameter}` > 0 ({meaning}), got {value}")
    return float(value)


def _check_tau(tau: float) -> float:
    if not 0 < tau < 1:  # also rejects NaN
        raise ValueError(f"quantile: expected `tau` in (0, 1), the quantile to estimate (0.5: the median), got {tau}")
    return float(tau)


def _reduce_values(values: Tensor, reduction: str) -> Tensor:
    """Elementwise values `(N,)` or `(N, D)` → summed over `D` per sample, then reduced over samples."""
    return reduce(_per_sample(values), reduction)


def charbonnier_loss(
    prediction: Tensor, target: Tensor, *, epsilon: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Charbonnier loss: a smooth L1, quadratic near zero, slope 1 in the tails.

    $$
    \ell_i = \sum_d \left(\sqrt{r_{id}^2 + \varepsilon^2} - \varepsilon\right), \qquad r = y - \hat y
    $$

    For $|r| \ll \varepsilon$ it is $r^2 / (2\varepsilon)$, for $|r| \gg \varepsilon$
    it is $|r| - \varepsilon$, and $\varepsilon \to 0$ gives L1. Its influence
    $\psi(r) = r / \sqrt{r^2 + \varepsilon^2}$ is bounded by 1.

    **The pseudo-Huber loss is the same curve, scaled:**
    $\delta^2 (\sqrt{1 + (r/\delta)^2} - 1) = \delta \cdot \text{charbonnier}_{\varepsilon = \delta}(r)$ ; it is $r^2/2$
    near zero and has slope $\delta$ in the tails, like Huber's $h_\delta$. So `pseudo-Huber(δ)` is
    `charbonnier(epsilon=δ)` times $\delta$ (the same minimiser and gradient direction; under SGD
    a learning rate $\delta$ times larger), and at the default $\varepsilon = \delta = 1$ the
    two coincide exactly.

    Computed as $|r| \cdot |r| / (\operatorname{hypot}(r, \varepsilon) + \varepsilon)$: no
    cancellation for $|r| \ll \varepsilon$ and no overflow for any residual.

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        epsilon: $\varepsilon > 0$, the residual scale where quadratic turns linear.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> charbonnier_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 3.0]), epsilon=4.0, reduction="none")
        tensor([0., 1.])
    """
    epsilon = _check_positive("charbonnier", "epsilon", epsilon, "the residual scale where quadratic turns linear")
    check_reduction("charbonnier", reduction)
    residual = _checked_target("charbonnier", prediction, target) - prediction
    magnitude = residual.abs()
    values = magnitude * (magnitude / (torch.hypot(residual, residual.new_tensor(epsilon)) + epsilon))
    return _reduce_values(values, reduction)


def log_cosh_loss(prediction: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Log-cosh loss: $r^2/2$ near zero, $|r| - \log 2$ in the tails, smooth everywhere.

    $$
    \ell_i = \sum_d \log\cosh(y_{id} - \hat y_{id})
    $$

    Its influence $\psi(r) = \tanh r$ is bounded by 1. $\cosh r$ itself overflows float32 at
    $|r| \approx 89$, so the tails are computed as $|r| + \operatorname{softplus}(-2|r|) - \log 2$
     (finite for any residual); for $|r| < 1$, where that form cancels, as
    $\operatorname{log1p}(2 \sinh^2(r/2))$, exact down to the smallest residuals.

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> log_cosh_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.5, 1e4]), reduction="none")
        tensor([1.2011e-01, 9.9993e+03])
    """
    check_reduction("log_cosh", reduction)
    magnitude = (_checked_target("log_cosh", prediction, target) - prediction).abs()
    small = magnitude < 1
    # Each branch gets inputs where it is finite, so the branch not taken cannot put NaN into the gradient.
    near = torch.where(small, magnitude, 0.0)
    far = torch.where(small, 1.0, magnitude)
    values = torch.where(small, torch.log1p(2 * torch.sinh(near / 2) ** 2), far + F.softplus(-2 * far) - math.log(2))
    return _reduce_values(values, reduction)


def cauchy_loss(prediction: Tensor, target: Tensor, *, c: float = 2.3849, reduction: Reduction = "mean") -> Tensor:
    r"""Cauchy (Lorentzian) loss: $r^2/2$ near zero, growing only logarithmically in the tails.

    $$
    \ell_i = \sum_d \frac{c^2}{2} \log\left(1 + (r_{id}/c)^2\right), \qquad r = y - \hat y
    $$

    Its influence $\psi(r) = r / (1 + (r/c)^2)$ peaks at $|r| = c$ (value $c/2$) and
    then *redescends* towards 0: far outliers pull less than near ones. Not convex for $|r| > c$.
    The default $c = 2.3849$ gives 95 % of the mean's efficiency on Gaussian noise of unit scale.
    Computed without overflow for any residual (as $c^2 \log \operatorname{hypot}(1, r/c)$ for
    $|r| \ge c$).

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        c: the residual scale $c > 0$ where the influence peaks.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> cauchy_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 100.0]), c=1.0, reduction="none")
        tensor([0.3466, 4.6052])
    """
    c = _check_positive("cauchy", "c", c, "the residual scale where the influence peaks")
    check_reduction("cauchy", reduction)
    scaled = (_checked_target("cauchy", prediction, target) - prediction) / c
    small = scaled.abs() < 1
    near = torch.where(small, scaled, 0.0)  # (r/c)² would overflow for |r/c| > 1e19 in float32
    far = torch.where(small, 1.0, scaled)
    values = c**2 * torch.where(small, 0.5 * torch.log1p(near**2), torch.log(torch.hypot(far, far.new_tensor(1.0))))
    return _reduce_values(values, reduction)


def tukey_loss(prediction: Tensor, target: Tensor, *, c: float = 4.685, reduction: Reduction = "mean") -> Tensor:
    r"""Tukey's biweight (bisquare) loss: about $r^2/2$ near zero, constant $c^2/6$ beyond $c$.

    $$
    \ell_i = \sum_d \rho_c(r_{id}), \qquad
    \rho_c(r) = \begin{cases} \tfrac{c^2}{6}\big(1 - (1 - (r/c)^2)^3\big) & |r| \le c \\
                              \tfrac{c^2}{6} & |r| > c \end{cases}
    $$

    Its influence $\psi(r) = r\,(1 - (r/c)^2)^2$ for $|r| \le c$ and **exactly 0 beyond**:
    residuals larger than $c$ neither add to the gradient nor change the loss. That is what rejects
    gross outliers, and also the trap: a model whose residuals all start beyond $c$ gets no
    gradient at all and stays where it is. Start it near the data (standardised targets, a small
    initial output) or from an L2/Huber fit. The default $c = 4.685$ gives 95 % of the mean's
    efficiency on Gaussian noise of unit scale.

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        c: $c > 0$, the residual beyond which a sample is ignored.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> tukey_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 5.0]), c=3.0, reduction="none")
        tensor([0.4465, 1.5000])
    """
    c = _check_positive("tukey", "c", c, "the residual beyond which a sample is ignored")
    check_reduction("tukey", reduction)
    residual = _checked_target("tukey", prediction, target) - prediction
    # u = min((r/c)², 1); 1 - (1 - u)³ written as u (3 - 3u + u²), which does not cancel for small u. The
    # clamp also zeroes the gradient beyond c (and an overflowing (r/c)² is inf, clamped to 1).
    u = ((residual / c) ** 2).clamp(max=1.0)
    return _reduce_values(c**2 / 6 * u * (3 - 3 * u + u**2), reduction)


def quantile_loss(prediction: Tensor, target: Tensor, *, tau: float = 0.5, reduction: Reduction = "mean") -> Tensor:
    r"""Quantile (pinball) loss: its minimiser is the $\tau$-quantile of the target, not its centre.

    $$
    \ell_i = \sum_d \max\left(\tau\, r_{id},\; (\tau - 1)\, r_{id}\right), \qquad r = y - \hat y
    $$

    Predicting $u$ too low costs $\tau u$, $u$ too high $(1 - \tau) u$;
    $\tau = 0.5$ is half of L1 (the median). Its influence is bounded by $\max(\tau, 1-\tau)$.
    At $r = 0$ the gradient is the midpoint of the two slopes (0 for $\tau = 0.5$, as L1's).

    Args:
        prediction: predictions $\hat y$, `(N,)` or `(N, D)`.
        target: targets $y$, the same shape.
        tau: the quantile $\tau \in (0, 1)$.
        reduction: `"mean"` over samples, `"sum"`, or `"none"` for the per-sample `(N,)` values.

    Examples:
        >>> quantile_loss(torch.tensor([0.0, 0.0]), torch.tensor([2.0, -2.0]), tau=0.9, reduction="none")
        tensor([1.8000, 0.2000])
    """
    tau = _check_tau(tau)
    check_reduction("quantile", reduction)
    residual = _checked_target("quantile", prediction, target) - prediction
    return _reduce_values(torch.maximum(tau * residual, (tau - 1) * residual), reduction)


class L1Loss(Loss):
    r"""Mean absolute error, registered as `l1`; robust to outliers (its constant minimiser is the median).

    $$
    \ell_i = \sum_d |y_{id} - \hat y_{id}|
    $$

    Args:
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> import torch
        >>> L1Loss()(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 3.0]]))
        tensor(3.)
    """

    name: ClassVar[str] = "l1"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return l1_loss(prediction, target, reduction=self.reduction)


class L2Loss(Loss):
    r"""Squared error, registered as `l2`; its constant minimiser is the mean.

    Also usable for binary classification on $\pm 1$ labels, as in the lecture: the class attribute
    `binary_target_encoding = "plus_minus_one"` tells the training pipeline to hand it $\pm 1$
    targets instead of 0/1.

    $$
    \ell_i = \sum_d (y_{id} - \hat y_{id})^2
    $$

    Args:
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> import torch
        >>> L2Loss(reduction="none")(torch.tensor([0.5, -2.0]), torch.tensor([1.0, -1.0]))
        tensor([0.2500, 1.0000])
    """

    name: ClassVar[str] = "l2"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION, Task.BINARY)
    binary_target_encoding: ClassVar[str] = "plus_minus_one"

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return l2_loss(prediction, target, reduction=self.reduction)


class HuberLoss(Loss):
    r"""Huber loss, registered as `huber`: L2 near zero, L1 in the tails.

    $$
    h_\delta(r) = \begin{cases} \tfrac12 r^2 & |r| < \delta \\
                                \delta\,(|r| - \tfrac12 \delta) & \text{otherwise} \end{cases}
    $$

    `torch.nn.SmoothL1Loss(beta=b)` equals `HuberLoss(delta=b)` divided by `b`.

    Args:
        delta: the residual size where quadratic turns linear, `> 0`.
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> import torch
        >>> HuberLoss(delta=2.0)(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 4.0]))
        tensor(3.2500)
    """

    name: ClassVar[str] = "huber"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)
    # delta is a residual in units of the standardised targets: from nearly L1 (0.05) to L2 on all but the
    # far tails (10); what matters is its order of magnitude, hence log-uniform.
    search_space: ClassVar[dict[str, Prior]] = {"delta": FloatRange(0.05, 10.0, log=True)}

    def __init__(self, *, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.delta = _check_delta(delta)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return huber_loss(prediction, target, delta=self.delta, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, {super().extra_repr()}"


class CharbonnierLoss(Loss):
    r"""Charbonnier loss, registered as `charbonnier`: a smooth L1; pseudo-Huber up to a scale.

    $$
    \ell_i = \sum_d \left(\sqrt{r_{id}^2 + \varepsilon^2} - \varepsilon\right)
    $$

    $r^2/(2\varepsilon)$ near zero, $|r| - \varepsilon$ in the tails, L1 as
    $\varepsilon \to 0$. The pseudo-Huber loss with $\delta$ is this loss with
    $\varepsilon = \delta$, multiplied by $\delta$; at the default $\varepsilon = 1$
    they are equal (see [charbonnier_loss][lossforge.losses.regression.charbonnier_loss]).

    Args:
        epsilon: $\varepsilon > 0$, the residual scale where quadratic turns linear.
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> CharbonnierLoss(epsilon=4.0)(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, -3.0]]))
        tensor(2.)
    """

    name: ClassVar[str] = "charbonnier"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)
    # The same range as Huber's delta, in the same units (standardised targets): from nearly L1 to nearly
    # L2 on all but the far tails; log-uniform because its order of magnitude is what matters.
    search_space: ClassVar[dict[str, Prior]] = {"epsilon": FloatRange(0.05, 10.0, log=True)}

    def __init__(self, *, epsilon: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.epsilon = _check_positive(self.name, "epsilon", epsilon, "the residual scale where quadratic turns linear")

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return charbonnier_loss(prediction, target, epsilon=self.epsilon, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, {super().extra_repr()}"


class LogCoshLoss(Loss):
    r"""Log-cosh loss, registered as `log_cosh`: L2/2 near zero, L1 in the tails, with no parameter.

    $$
    \ell_i = \sum_d \log\cosh(y_{id} - \hat y_{id})
    $$

    Finite for any residual (see [log_cosh_loss][lossforge.losses.regression.log_cosh_loss]); its gradient is $\tanh r$.

    Args:
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> round(LogCoshLoss()(torch.tensor([0.0]), torch.tensor([1.0])).item(), 4)  # log cosh 1
        0.4338
    """

    name: ClassVar[str] = "log_cosh"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return log_cosh_loss(prediction, target, reduction=self.reduction)


class CauchyLoss(Loss):
    r"""Cauchy (Lorentzian) loss, registered as `cauchy`: redescending, so far outliers pull less.

    $$
    \ell_i = \sum_d \frac{c^2}{2} \log\left(1 + (r_{id}/c)^2\right)
    $$

    $r^2/2$ near zero; the influence $r / (1 + (r/c)^2)$ peaks at $|r| = c$ and falls
    back towards 0 (see [cauchy_loss][lossforge.losses.regression.cauchy_loss]).

    Args:
        c: $c > 0$, the residual scale where the influence peaks (default 2.3849: 95 % efficiency
            on unit Gaussian noise).
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> CauchyLoss(c=1.0)(torch.tensor([0.0, 0.0]), torch.tensor([1.0, -1.0]))
        tensor(0.3466)
    """

    name: ClassVar[str] = "cauchy"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)
    # c in units of the standardised targets, from a tenth of a standard deviation (rejects most residuals
    # early in training) to 10 (Cauchy is then L2/2 on all but gross outliers); log-uniform.
    search_space: ClassVar[dict[str, Prior]] = {"c": FloatRange(0.1, 10.0, log=True)}

    def __init__(self, *, c: float = 2.3849, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.c = _check_positive(self.name, "c", c, "the residual scale where the influence peaks")

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return cauchy_loss(prediction, target, c=self.c, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"c={self.c}, {super().extra_repr()}"


class TukeyLoss(Loss):
    r"""Tukey's biweight loss, registered as `tukey`: residuals beyond $c$ are ignored outright.

    $$
    \rho_c(r) = \begin{cases} \tfrac{c^2}{6}\big(1 - (1 - (r/c)^2)^3\big) & |r| \le c \\
                              \tfrac{c^2}{6} & |r| > c \end{cases}
    $$

    summed over outputs. The gradient is exactly zero beyond $c$, which rejects gross outliers —
    and stalls a model whose residuals all start beyond $c$ (it never moves); start near the data
    (see [tukey_loss][lossforge.losses.regression.tukey_loss]).

    Args:
        c: $c > 0$, the residual beyond which a sample is ignored (default 4.685: 95 % efficiency
            on unit Gaussian noise).
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> TukeyLoss(c=3.0)(torch.tensor([0.0, 0.0]), torch.tensor([5.0, -50.0]))  # both beyond c: c²/6
        tensor(1.5000)
    """

    name: ClassVar[str] = "tukey"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)
    # c in units of the standardised targets: below ~1 most clean residuals sit in the zero-gradient zone
    # at the start; 20 is L2/2 for everything but gross outliers. Log-uniform.
    search_space: ClassVar[dict[str, Prior]] = {"c": FloatRange(1.0, 20.0, log=True)}

    def __init__(self, *, c: float = 4.685, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.c = _check_positive(self.name, "c", c, "the residual beyond which a sample is ignored")

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return tukey_loss(prediction, target, c=self.c, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"c={self.c}, {super().extra_repr()}"


class QuantileLoss(Loss):
    r"""Quantile (pinball) loss, registered as `quantile`: fits the $\tau$-quantile.

    $$
    \ell_i = \sum_d \max\left(\tau\, r_{id},\; (\tau - 1)\, r_{id}\right), \qquad r = y - \hat y
    $$

    Under-predicting costs $\tau$ per unit, over-predicting $1 - \tau$; $\tau = 0.5$
    is half of L1. Against one-sided outliers a $\tau$ below 0.5 leans away from them.

    Args:
        tau: $\tau \in (0, 1)$, the quantile (0.5: the median).
        reduction: `"mean"` (over samples), `"sum"` or `"none"`.

    Shape:
        - prediction: `(N,)` or `(N, D)`; target: the same shape.
        - output: a scalar, or `(N,)` (the per-sample sum over `D`) for `reduction="none"`.

    Examples:
        >>> QuantileLoss(tau=0.9)(torch.tensor([0.0, 0.0]), torch.tensor([2.0, -2.0]))
        tensor(1.)
    """

    name: ClassVar[str] = "quantile"
    tasks: ClassVar[tuple[Task, ...]] = (Task.REGRESSION,)
    # Validation MAE judges the result, so tuning tau can lean against skewed noise; the range stays clear
    # of the extremes, whose fits follow the data's edges.
    search_space: ClassVar[dict[str, Prior]] = {"tau": FloatRange(0.05, 0.95)}

    def __init__(self, *, tau: float = 0.5, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.tau = _check_tau(tau)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return quantile_loss(prediction, target, tau=self.tau, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, {super().extra_repr()}"
