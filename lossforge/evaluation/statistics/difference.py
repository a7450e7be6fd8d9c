"""One group against the baseline: the mean difference with its confidence interval, a permutation test paired
by seed where the seeds allow ([compare_to_baseline][lossforge.evaluation.statistics.difference.compare_to_baseline]),
Holm's correction over a table's comparisons, and how many seeds a verdict needs at all
([seeds_needed][lossforge.evaluation.statistics.difference.seeds_needed]).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lossforge.evaluation.statistics.summary import CONFIDENCE

ALPHA = 0.05
"""Significance level of every test, after Holm's correction."""

RECOMMENDED_SEEDS = 10
"""Seeds per configuration the tuning protocol should run (module docstring: the arithmetic behind it)."""
PERMUTATIONS = 9999
"""Permutations a test may enumerate exactly; with more possible arrangements it samples this many
(from a fixed seed, so the same runs always give the same p-value)."""

Seed = TypeVar("Seed", bound=Hashable)


@dataclass(frozen=True)
class Difference:
    """`candidate − baseline`: the mean difference, its CI, and a permutation-test p-value."""

    difference: float  # mean(candidate) − mean(baseline); paired, the same number as the mean of the differences
    ci_low: float | None  # None where the spread cannot be estimated (n = 1 on a side)
    ci_high: float | None
    paired: bool  # by seed: both sides ran exactly the same seeds
    p_value: float | None  # two-sided permutation test (sign flips paired, relabelling not); None below 2 a side
    min_p_value: float  # the smallest p-value this test can give with these n, whatever the data
    exact: bool  # every permutation enumerated (else PERMUTATIONS sampled ones)


def min_p_value(n: int, *, n_baseline: int | None = None, n_resamples: int = PERMUTATIONS) -> float:
    """The smallest two-sided p-value a permutation test can give with these sample sizes.

    Paired (`n_baseline` None): `2 / 2**n` — `2**n` sign patterns, the observed one the most extreme,
    doubled for two sides. Unpaired: `2 / C(n + n_baseline, n)` labellings. Where there are more
    arrangements than `n_resamples`, the test samples them and can go no lower than
    `2 / (n_resamples + 1)`.

    ```pycon
    >>> min_p_value(5)  # 5 paired seeds: never below 0.05
    0.0625
    >>> round(min_p_value(4, n_baseline=4), 4)  # 4 + 4 unpaired runs: 70 labellings
    0.0286

    ```
    """
    arrangements = 2**n if n_baseline is None else math.comb(n + n_baseline, n)
    if arrangements > n_resamples:
        return min(1.0, 2 / (n_resamples + 1))
    return min(1.0, 2 / arrangements)


def seeds_needed(comparisons: int, *, paired: bool = True, alpha: float = ALPHA, n_baseline: int | None = None) -> int:
    """The fewest seeds per group at which `comparisons` Holm-corrected tests can reach `alpha`.

    A verdict needs `comparisons * min_p_value(n) <= alpha` (Holm multiplies the smallest p-value by the
    number of comparisons). Paired, `n` counts the seeds both sides ran. Unpaired, the baseline has
    `n_baseline` runs (`None`: as many as the group, `n`).

    Args:
        comparisons: the size of the Holm family.
        paired: sign flips on paired seeds, else relabelling two independent samples.
        alpha: the significance level after Holm's correction.
        n_baseline: the baseline's number of runs, for an unpaired comparison.

    Returns:
        The smallest `n` with $m \\cdot p_{\\min}(n) \\le \\alpha$.

    Examples:
        >>> seeds_needed(1), seeds_needed(3), seeds_needed(6), seeds_needed(1, paired=False)
        (6, 7, 8, 4)
        >>> seeds_needed(2, paired=False), seeds_needed(2, paired=False, n_baseline=5)  # 2·2/C(9, 4) = 0.032
        (5, 4)
    """
    if comparisons * 2 / (PERMUTATIONS + 1) > alpha:  # no n is enough once the permutations are sampled
        raise ValueError(f"Expected at most {int(alpha * (PERMUTATIONS + 1) / 2)} comparisons, got {comparisons}")
    n = 1
    while comparisons * min_p_value(n, n_baseline=None if paired else (n_baseline or n)) > alpha:
        n += 1
    return n


def compare_to_baseline(
    candidate: Mapping[Seed, float],
    baseline: Mapping[Seed, float],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = PERMUTATIONS,
) -> Difference:
    """The difference `candidate − baseline` with its confidence interval and a permutation-test p-value.

    Paired by seed when both sides ran exactly the same seeds — the seed fixes the data split and the
    initialisation, so differences within a seed remove that shared noise:

    $$
    d_s = x_s - b_s, \\qquad \\bar d \\pm t_{n-1} \\frac{s_d}{\\sqrt n}, \\qquad
    p = P\\big(|\\textstyle\\frac1n \\sum_s \\varepsilon_s d_s| \\ge |\\bar d|\\big),\\;
    \\varepsilon_s = \\pm 1
    $$

    (`scipy.stats.ttest_rel` for the interval, `scipy.stats.permutation_test` flipping signs for
    `p`). Otherwise unpaired: Welch's interval (`ttest_ind(equal_var=False)`) and a permutation test
    relabelling the runs, on the difference of means. The permutation tests assume no distribution, and
    are exact (every arrangement enumerated) up to `n_resamples` arrangements — 13 paired seeds.

    Args:
        candidate: seed → value of the group being judged.
        baseline: seed → value of the baseline group.
        confidence: level of the interval.
        n_resamples: the most permutations enumerated; beyond, this many are sampled from a fixed seed.

    Examples:
        Five seeds, each better than the baseline — yet no sign-flip test on 5 values goes below 2/32:

        >>> diff = compare_to_baseline({0: 0.91, 1: 0.93, 2: 0.92, 3: 0.95, 4: 0.94},
        ...                            {0: 0.90, 1: 0.91, 2: 0.91, 3: 0.92, 4: 0.90})
        >>> round(diff.difference, 4), diff.paired, diff.p_value, diff.min_p_value
        (0.022, True, 0.0625, 0.0625)
    """
    from scipy import stats

    if not candidate or not baseline:
        raise ValueError(f"Expected values on both sides, got {len(candidate)} and {len(baseline)}")
    paired = set(candidate) == set(baseline)
    if paired:
        differences = np.array([candidate[seed] - baseline[seed] for seed in candidate], dtype=float)
        samples: tuple[np.ndarray, ...] = (differences,)  # one sample: the null flips each difference's sign
        mean = float(differences.mean())
        interval = _mean_interval(differences, confidence)
        arrangements = 2 ** len(differences)
        smallest = min_p_value(len(differences), n_resamples=n_resamples)
    else:
        x = np.array(list(candidate.values()), dtype=float)
        b = np.array(list(baseline.values()), dtype=float)
        samples = (x, b)  # two samples: the null relabels the runs
        mean = float(x.mean() - b.mean())
        interval = _welch_interval(x, b, confidence)
        arrangements = math.comb(len(x) + len(b), len(x))
        smallest = min_p_value(len(x), n_baseline=len(b), n_resamples=n_resamples)
    if min(len(sample) for sample in samples) < 2:  # scipy's test needs two values a sample
        return Difference(mean, *interval, paired, None, 1.0, False)
    test = stats.permutation_test(
        samples,
        np.mean if paired else _difference_of_means,
        permutation_type="samples" if paired else "independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(0),  # used only beyond n_resamples arrangements: the same runs, the same p
    )
    return Difference(mean, *interval, paired, float(test.pvalue), smallest, arrangements <= n_resamples)


def _difference_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _mean_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Student-t interval of the mean (`ttest_1samp`), a point for identical values, None for one."""
    from scipy import stats

    if values.size < 2:
        return None, None
    if _constant(values):
        return float(values.mean()), float(values.mean())
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return float(interval.low), float(interval.high)


def _constant(values: np.ndarray) -> bool:
    """Equal up to float rounding: there the t interval is a point (scipy warns, then returns nonsense)."""
    return bool(np.ptp(values) <= 1e-12 * np.abs(values).max())


def _welch_interval(x: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Welch's interval of `mean(x) − mean(b)`; needs a spread on each side (n ≥ 2)."""
    from scipy import stats

    if x.size < 2 or b.size < 2:
        return None, None
    if _constant(x) and _constant(b):
        point = float(x.mean() - b.mean())
        return point, point
    interval = stats.ttest_ind(x, b, equal_var=False).confidence_interval(confidence)
    return float(interval.low), float(interval.high)


def shared_seeds(
    candidate: Mapping[Seed, float], baseline: Mapping[Seed, float]
) -> tuple[Mapping[Seed, float], Mapping[Seed, float]]:
    """Both sides restricted to the seeds both ran, when at least two are shared; else both unchanged.

    A run missing on one side (it failed, or did not log the metric) must not turn a paired comparison into
    an unpaired one: the seeds both sides share still cancel the noise each seed shares, and the sign-flip
    test on them keeps the power that Welch's unpaired test would lose. With fewer than two shared seeds
    no paired test exists, and [compare_to_baseline][lossforge.evaluation.statistics.difference.compare_to_baseline]
    compares all runs unpaired.

    Examples:
        >>> shared_seeds({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.5, 1: 1.5})
        ({0: 1.0, 1: 2.0}, {0: 0.5, 1: 1.5})
        >>> shared_seeds({0: 1.0, 1: 2.0}, {1: 0.5, 5: 1.5})  # one shared seed: unpaired, every run
        ({0: 1.0, 1: 2.0}, {1: 0.5, 5: 1.5})
    """
    common = [seed for seed in candidate if seed in baseline]
    if len(common) < 2 or len(common) == len(candidate) == len(baseline):
        return candidate, baseline
    return {seed: candidate[seed] for seed in common}, {seed: baseline[seed] for seed in common}


def holm(p_values: Sequence[float], *, alpha: float = ALPHA) -> list[float]:
    """Holm-adjusted p-values (`statsmodels.stats.multitest.multipletests(method="holm")`).

    $$
    \\tilde p_{(i)} = \\min\\big(1, \\max_{j \\le i} (m - j + 1)\\, p_{(j)}\\big)
    $$

    for the p-values sorted ascending; reject where `p̃ <= alpha`. It controls the chance of any false
    "better"/"worse" in a table at `alpha`, whatever the dependence between the comparisons.

    ```pycon
    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]

    ```
    """
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]
