r"""The robust family: bounded influence (Charbonnier, log-cosh), redescending (Cauchy, Tukey's biweight)
and asymmetric (the quantile loss), as pure functions and then as registered modules.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from lossforge.contract import FloatRange, Prior, Task
from lossforge.losses.base import Loss, Reduction, check_reduction
from lossforge.losses.regression.inputs import _check_positive, _checked_target, _reduce_values


def _check_tau(tau: float) -> float:
    if not 0 < tau < 1:  # also rejects NaN
        raise ValueError(f"quantile: expected `tau` in (0, 1), the quantile to estimate (0.5: the median), got {tau}")
    return float(tau)


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


class CharbonnierLoss(Loss):
    r"""Charbonnier loss, registered as `charbonnier`: a smooth L1; pseudo-Huber up to a scale.

    $$
    \ell_i = \sum_d \left(\sqrt{r_{id}^2 + \varepsilon^2} - \varepsilon\right)
    $$

    $r^2/(2\varepsilon)$ near zero, $|r| - \varepsilon$ in the tails, L1 as
    $\varepsilon \to 0$. The pseudo-Huber loss with $\delta$ is this loss with
    $\varepsilon = \delta$, multiplied by $\delta$; at the default $\varepsilon = 1$
    they are equal (see [charbonnier_loss][lossforge.losses.regression.robust.charbonnier_loss]).

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

    Finite for any residual (see [log_cosh_loss][lossforge.losses.regression.robust.log_cosh_loss]); its gradient
    is $\tanh r$.

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
    back towards 0 (see [cauchy_loss][lossforge.losses.regression.robust.cauchy_loss]).

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
    (see [tukey_loss][lossforge.losses.regression.robust.tukey_loss]).

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
