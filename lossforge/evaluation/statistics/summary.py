"""One group in numbers: n, mean, sample standard deviation and the Student-t confidence interval of the mean
([summarize][lossforge.evaluation.statistics.summary.summarize]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
"""Level of every confidence interval."""

SINGLE_RUN_NOTE = "n = 1: mean only — an interval needs at least 2 runs to estimate the spread"


@dataclass(frozen=True)
class Summary:
    """A group's values in numbers: `n`, mean, sample standard deviation and the CI of the mean."""

    n: int
    mean: float
    std: float | None  # sample standard deviation (n − 1 in the denominator); None for n = 1
    ci_low: float | None  # the confidence interval of the mean; None for n = 1
    ci_high: float | None
    note: str = ""  # why there is no interval, when there is none


def summarize(values: Sequence[float], *, confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample standard deviation and Student-t confidence interval of the mean of `values`.

    $$
    \\bar x \\pm t_{1-(1-c)/2,\\; n-1} \\, \\frac{s}{\\sqrt n}, \\qquad
    s = \\sqrt{\\tfrac{1}{n-1} \\textstyle\\sum_i (x_i - \\bar x)^2}
    $$

    Why Student t and not the bootstrap: with the 3–10 seeds a loss comparison has, a percentile
    bootstrap interval is too narrow (with 3 values there are only 10 distinct resamples, none wider
    than the data), while the t interval is exact for normal values and close for a seed's test metric,
    itself an average over many test examples.

    Args:
        values: one value per run (seed), at least one.
        confidence: level of the interval.

    Examples:
        >>> s = summarize([0.90, 0.92, 0.94])
        >>> s.n, round(s.mean, 4), round(s.std, 4), round(s.ci_low, 4), round(s.ci_high, 4)
        (3, 0.92, 0.02, 0.8703, 0.9697)
        >>> summarize([0.9]).note
        'n = 1: mean only — an interval needs at least 2 runs to estimate the spread'
    """
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("Expected at least one value to summarize, got none")
    mean = float(data.mean())
    if data.size == 1:
        return Summary(1, mean, None, None, None, SINGLE_RUN_NOTE)
    std = float(data.std(ddof=1))
    if std == 0.0:  # identical values: the t interval degenerates to the point (scipy would return nan)
        return Summary(int(data.size), mean, 0.0, mean, mean)
    low, high = stats.t.interval(confidence, data.size - 1, loc=mean, scale=std / math.sqrt(data.size))
    return Summary(int(data.size), mean, std, float(low), float(high))
