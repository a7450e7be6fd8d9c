"""Is a difference between two losses real, or seed noise? The statistics behind an honest comparison.

Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020), found that most published loss
improvements vanish once every loss gets the same tuning budget and results are averaged over repeated
runs. This module turns repeated runs (one value per seed) into numbers that say how sure we are:

* [metric_direction][lossforge.evaluation.statistics.metric_direction] — which way is better for a metric (`accuracy`
  up, `mae` down); the training `loss` is refused: it is a different function for every loss, so its values do not
  compare.
* [summarize][lossforge.evaluation.statistics.summarize] — n, mean, sample standard deviation and the 95 % confidence
  interval of the mean.
* [compare_to_baseline][lossforge.evaluation.statistics.compare_to_baseline] — the mean difference to a baseline with
  its 95 % confidence interval and a permutation-test p-value, paired by seed when both sides ran the same seeds.
* [verdict_table][lossforge.evaluation.statistics.verdict_table] — one row per group with a verdict against the baseline
  (`better`, `worse`, `no detectable difference` or `too few runs…`), p-values Holm-adjusted over the table.
* [friedman_nemenyi][lossforge.evaluation.statistics.friedman_nemenyi] and
  [critical_difference_figure][lossforge.evaluation.statistics.critical_difference_figure] — several losses over several
  datasets: Friedman test, average ranks and the Nemenyi critical difference (Demšar, JMLR 2006).

Everything works on plain numbers (`group → seed → value`); nothing here touches MLflow or torch.
scipy, statsmodels and matplotlib are imported inside the functions that use them, so importing this
module (and `lossforge compare`) stays fast.

How many seeds? With `n` paired seeds the exact sign-flip test can give no p-value below
`2 / 2**n` — reached when every seed moves the same way. Holm multiplies the smallest p-value of a table
by the number of comparisons `m`, so a verdict is possible at all only when `m * 2 / 2**n <= 0.05`,
i.e. `n >= 1 + log2(20 m)`: one comparison needs 6 seeds, 2–3 need 7, 4–6 need 8, 7–12 need 9
([seeds_needed][lossforge.evaluation.statistics.seeds_needed]).
[RECOMMENDED_SEEDS][lossforge.evaluation.statistics.RECOMMENDED_SEEDS] is 10, one margin above that floor for a handful
(five) of losses against a baseline: a large effect that shows in every seed gives `5 * 2/1024 = 0.01`, and it is still
detected when the smallest one or two differences point the other way (at best `5 * 4/1024 = 0.02` and
`5 * 8/1024 = 0.04`). With 8 seeds — the floor — a single contrary seed already loses the verdict (`5 * 4/256 = 0.078`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from lossforge.contract import did_you_mean

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ALPHA = 0.05
"""Significance level of every test, after Holm's correction."""
CONFIDENCE = 0.95
"""Level of every confidence interval."""
RECOMMENDED_SEEDS = 10
"""Seeds per configuration the tuning protocol should run (module docstring: the arithmetic behind it)."""
PERMUTATIONS = 9999
"""Permutations a test may enumerate exactly; with more possible arrangements it samples this many
(from a fixed seed, so the same runs always give the same p-value)."""

Direction = Literal["higher", "lower"]
Seed = TypeVar("Seed", bound=Hashable)

HIGHER_IS_BETTER = ("accuracy", "f1_macro", "subset_accuracy", "recall*", "map_at_r", "knn_accuracy")
"""Metric names (the part after `train/`, `val/` or `test/`; fnmatch patterns) by better direction."""
LOWER_IS_BETTER = ("mae", "rmse", "nll", "ece")
NOT_COMPARABLE = {
    "loss": "it is each run's own training objective — L1, cross-entropy and triplet losses measure different "
    "things on different scales — so its values do not compare across losses",
}
"""Metrics whose values mean something different for every loss, so rows cannot be compared on them."""
_STAGES = ("train", "val", "test")

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
SINGLE_RUN_NOTE = "n = 1: mean only — an interval needs at least 2 runs to estimate the spread"


def too_few_runs(seeds_needed: int) -> str:
    """The verdict for a comparison whose test could not reach significance even on the most extreme data.

    ```pycon
    >>> too_few_runs(8)
    'too few runs for a verdict (needs ≥ 8 seeds)'

    ```
    """
    return f"too few runs for a verdict (needs ≥ {seeds_needed} seeds)"


class NotComparableError(ValueError):
    """A metric whose values cannot be compared across rows (`loss`) was asked for a verdict."""


def metric_base_name(metric: str) -> str:
    """The metric's own name: without its stage prefix, and without a per-class suffix.

    ```pycon
    >>> metric_base_name("test/accuracy"), metric_base_name("test/recall/3"), metric_base_name("map_at_r")
    ('accuracy', 'recall', 'map_at_r')

    ```
    """
    parts = metric.split("/")
    if len(parts) > 1 and parts[0] in _STAGES:
        parts = parts[1:]
    return parts[0]


def metric_direction(metric: str, *, override: Direction | None = None) -> Direction:
    """Whether a higher or a lower value of `metric` is better.

    Args:
        metric: a logged metric name, e.g. `test/accuracy`, `val/mae`, `test/recall/3`.
        override: the caller's answer for a metric lossforge does not know (a plugin's own metric);
            it also replaces the built-in answer for a known one.

    Raises:
        NotComparableError: for `loss`, whatever the override: it is not the same function in two rows.
        ValueError: for an unknown metric without `override`, naming the known ones.

    Examples:
        >>> metric_direction("test/accuracy"), metric_direction("test/recall_at_1"), metric_direction("val/ece")
        ('higher', 'higher', 'lower')
        >>> metric_direction("test/brier", override="lower")
        'lower'
        >>> metric_direction("test/acuracy")
        Traceback (most recent call last):
        ...
        ValueError: lossforge does not know whether a higher or a lower 'test/acuracy' is better. ...
    """
    name = metric_base_name(metric)
    if name in NOT_COMPARABLE:
        raise NotComparableError(
            f"{metric!r} cannot be compared across rows: {NOT_COMPARABLE[name]}. Compare a task metric instead "
            f"(higher is better: {', '.join(HIGHER_IS_BETTER)}; lower is better: {', '.join(LOWER_IS_BETTER)})."
        )
    if override is not None:
        if override not in ("higher", "lower"):
            raise ValueError(f"Expected `override` to be 'higher' or 'lower', got {override!r}")
        return override
    if any(fnmatchcase(name, pattern) for pattern in HIGHER_IS_BETTER):
        return "higher"
    if any(fnmatchcase(name, pattern) for pattern in LOWER_IS_BETTER):
        return "lower"
    known = [*HIGHER_IS_BETTER, *LOWER_IS_BETTER]
    raise ValueError(
        f"lossforge does not know whether a higher or a lower {metric!r} is better. "
        f"Known: higher {', '.join(HIGHER_IS_BETTER)}; lower {', '.join(LOWER_IS_BETTER)}. "
        f"Say it explicitly: `lossforge compare --higher-is-better {metric}` (or --lower-is-better), "
        f"direction='higher' | 'lower' in Python.{did_you_mean(name, [k.rstrip('*') for k in known])}"
    )


def is_comparable(metric: str) -> bool:
    """Whether `metric` has a known direction and means the same in every row (default table columns).

    ```pycon
    >>> is_comparable("test/mae"), is_comparable("test/loss"), is_comparable("test/brier")
    (True, False, False)

    ```
    """
    try:
        metric_direction(metric)
    except ValueError:
        return False
    return True


# -- one group -----------------------------------------------------------------------------------------


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


# -- one group against the baseline ----------------------------------------------------------------------


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
    no paired test exists, and [compare_to_baseline][lossforge.evaluation.statistics.compare_to_baseline]
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


# -- the verdict table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictRow:
    """One group of a verdict table: its summary and, unless it is the baseline, the verdict against it."""

    group: str
    metric: str
    direction: Direction
    n: int
    mean: float
    std: float | None  # sample standard deviation
    ci_low: float | None  # confidence interval of the mean
    ci_high: float | None
    values: dict[str, float] = field(default_factory=dict)  # seed → value, the data behind the row
    note: str = ""  # why a number is missing
    baseline: str | None = None  # the rest is None on the baseline's row and in a table without baseline
    difference: float | None = None  # mean(group) − mean(baseline)
    difference_ci_low: float | None = None
    difference_ci_high: float | None = None
    paired: bool | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # Holm over the comparisons of the table
    verdict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain types only: what `json.dumps` and `csv` take."""
        return asdict(self)


def verdict_table(
    groups: Mapping[str, Mapping[Seed, float]],
    *,
    metric: str,
    baseline: str | None = None,
    direction: Direction | None = None,
    alpha: float = ALPHA,
    confidence: float = CONFIDENCE,
    n_resamples: int = PERMUTATIONS,
) -> list[VerdictRow]:
    """A row per group — n, mean, sample std, CI — and, with a `baseline`, a verdict for every other group.

    Each non-baseline group is compared to the baseline with
    [compare_to_baseline][lossforge.evaluation.statistics.compare_to_baseline]; the p-values of the table are adjusted
    together with [holm][lossforge.evaluation.statistics.holm]. The verdict of a row is

    * `better` / `worse` — Holm-adjusted `p <= alpha`, in the metric's better/worse direction;
    * `too few runs for a verdict (needs ≥ K seeds)` — even the most extreme data could not reach
      `alpha` with these n after the correction (the Holm-adjusted
      [min_p_value][lossforge.evaluation.statistics.min_p_value]), so "no difference" would be a claim the runs cannot
      support; `K` is [seeds_needed][lossforge.evaluation.statistics.seeds_needed] for the table;
    * `no detectable difference` — otherwise.

    Args:
        groups: group label → seed → value, e.g. `{"cross_entropy": {0: 0.91, 1: 0.93}, ...}`; the
            order of the groups is the order of the rows.
        metric: the metric the values are of; decides the direction
            ([metric_direction][lossforge.evaluation.statistics.metric_direction]).
        baseline: the label of the group the others are compared to; None for summaries only.
        direction: `"higher"` or `"lower"`, for a metric
            [metric_direction][lossforge.evaluation.statistics.metric_direction] does not know.
        alpha: significance level after Holm's correction.
        confidence: level of the confidence intervals.
        n_resamples: permutations enumerated exactly up to this many; beyond, sampled.

    Examples:
        >>> rows = verdict_table({"cross_entropy": {0: 0.90, 1: 0.91, 2: 0.92},
        ...                       "focal": {0: 0.93, 1: 0.94, 2: 0.95}}, metric="test/accuracy",
        ...                      baseline="cross_entropy")
        >>> [(row.group, round(row.mean, 3), row.verdict) for row in rows]
        [('cross_entropy', 0.91, None), ('focal', 0.94, 'too few runs for a verdict (needs ≥ 6 seeds)')]
    """
    chosen = metric_direction(metric, override=direction)
    if baseline is not None and baseline not in groups:
        raise ValueError(
            f"The baseline {baseline!r} is not one of the groups: {', '.join(groups)}.{did_you_mean(baseline, groups)}"
        )
    empty = [label for label, values in groups.items() if not values]
    if empty:
        raise ValueError(f"Groups without a value of {metric}: {', '.join(empty)}; leave them out")
    summaries = {label: summarize(list(values.values()), confidence=confidence) for label, values in groups.items()}
    differences = {
        label: compare_to_baseline(
            *shared_seeds(values, groups[baseline]), confidence=confidence, n_resamples=n_resamples
        )
        for label, values in groups.items()
        if baseline is not None and label != baseline
    }
    tested = {label: diff.p_value for label, diff in differences.items() if diff.p_value is not None}
    adjusted = dict(zip(tested, holm(list(tested.values()), alpha=alpha), strict=True))
    # Holm is monotone in every p-value, so the most extreme data of every row gives each row its best case.
    smallest = [differences[label].min_p_value for label in tested]
    best_case = dict(zip(tested, holm(smallest, alpha=alpha), strict=True))
    rows = []
    for label, values in groups.items():
        summary = summaries[label]
        row = VerdictRow(
            group=label,
            metric=metric,
            direction=chosen,
            n=summary.n,
            mean=summary.mean,
            std=summary.std,
            ci_low=summary.ci_low,
            ci_high=summary.ci_high,
            values={str(seed): float(value) for seed, value in values.items()},
            note=summary.note,
        )
        if label in differences:
            diff = differences[label]
            best = best_case.get(label, 1.0)
            size = None if diff.paired else len(groups[baseline or label])
            row = _with_verdict(row, baseline, diff, adjusted.get(label), best, len(differences), alpha, size)
        rows.append(row)
    return rows


def _with_verdict(
    row: VerdictRow,
    baseline: str | None,
    diff: Difference,
    p_adjusted: float | None,
    best_case: float,
    comparisons: int,
    alpha: float,
    n_baseline: int | None = None,
) -> VerdictRow:
    if best_case > alpha:
        verdict = too_few_runs(seeds_needed(comparisons, paired=diff.paired, alpha=alpha, n_baseline=n_baseline))
    elif p_adjusted is not None and p_adjusted <= alpha:
        improved = diff.difference > 0 if row.direction == "higher" else diff.difference < 0
        verdict = BETTER if improved else WORSE
    else:
        verdict = NO_DIFFERENCE
    return VerdictRow(
        **{
            **asdict(row),
            "baseline": baseline,
            "difference": diff.difference,
            "difference_ci_low": diff.ci_low,
            "difference_ci_high": diff.ci_high,
            "paired": diff.paired,
            "p_value": diff.p_value,
            "p_adjusted": p_adjusted,
            "verdict": verdict,
        }
    )


# -- several datasets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's test over datasets, with average ranks and the Nemenyi critical difference."""

    statistic: float  # Friedman's chi-square
    p_value: float  # of "all methods rank alike"
    average_ranks: dict[str, float]  # method → mean rank over the datasets, 1 = best, best first
    critical_difference: float  # two methods differ (Nemenyi, at alpha) when their ranks differ by at least this
    n_datasets: int
    alpha: float


def critical_difference(methods: int, datasets: int, *, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks (Demšar 2006, eq. 5).

    $$
    CD = q_\\alpha \\sqrt{\\frac{k (k + 1)}{6 N}}, \\qquad
    q_\\alpha = \\frac{\\text{studentized range}_{1-\\alpha}(k, \\infty)}{\\sqrt 2}
    $$

    for `k` methods on `N` datasets (`scipy.stats.studentized_range`).

    ```pycon
    >>> round(critical_difference(4, 10), 3)  # Demšar's table: q_0.05 = 2.569 for k = 4
    1.483

    ```
    """
    from scipy import stats

    q_alpha = float(stats.studentized_range.ppf(1 - alpha, methods, np.inf)) / math.sqrt(2)
    return q_alpha * math.sqrt(methods * (methods + 1) / (6 * datasets))


def friedman_nemenyi(
    scores: Mapping[str, Mapping[str, float]],
    *,
    metric: str,
    direction: Direction | None = None,
    alpha: float = ALPHA,
) -> FriedmanResult:
    """Do several methods (losses) rank differently over several datasets? Friedman, ranks, Nemenyi CD.

    Each dataset ranks the methods (1 = best; ties share the mean rank, `scipy.stats.rankdata`); the
    Friedman test (`scipy.stats.friedmanchisquare`) asks whether the average ranks differ more than
    chance; two methods whose average ranks differ by at least
    [critical_difference][lossforge.evaluation.statistics.critical_difference] differ at `alpha` (Nemenyi post-hoc
    test). Use one value per method and dataset — e.g. the mean over seeds.

    Args:
        scores: method → dataset → value; every method needs a value on every dataset.
        metric: what the values are of; decides the direction of a rank.
        direction: `"higher"` or `"lower"`, for a metric
            [metric_direction][lossforge.evaluation.statistics.metric_direction] does not know.
        alpha: level of the Nemenyi critical difference.

    Examples:
        >>> scores = {"cross_entropy": {"a": 0.90, "b": 0.80, "c": 0.70, "d": 0.95},
        ...           "focal": {"a": 0.92, "b": 0.82, "c": 0.71, "d": 0.96},
        ...           "hinge": {"a": 0.85, "b": 0.79, "c": 0.60, "d": 0.90}}
        >>> result = friedman_nemenyi(scores, metric="test/accuracy")
        >>> result.average_ranks, round(result.p_value, 4), round(result.critical_difference, 3)
        ({'focal': 1.0, 'cross_entropy': 2.0, 'hinge': 3.0}, 0.0183, 1.657)
    """
    from scipy import stats

    chosen = metric_direction(metric, override=direction)
    methods = list(scores)
    if len(methods) < 3:
        raise ValueError(
            f"Expected at least 3 methods for a Friedman test, got {len(methods)}; "
            "compare two methods with verdict_table on each dataset instead"
        )
    datasets = sorted(set().union(*(set(values) for values in scores.values())))
    if len(datasets) < 2:
        raise ValueError(
            f"Expected at least 2 datasets for a Friedman test, got {len(datasets)}: it ranks methods across "
            "datasets; on one dataset compare them with verdict_table"
        )
    missing = [f"{method} on {dataset}" for method in methods for dataset in datasets if dataset not in scores[method]]
    if missing:
        raise ValueError(f"Every method needs a value on every dataset; missing: {', '.join(missing)}")
    table = np.array([[scores[method][dataset] for method in methods] for dataset in datasets])  # (N, k)
    ranks = stats.rankdata(-table if chosen == "higher" else table, axis=1)  # (N, k), 1 = best
    statistic, p_value = stats.friedmanchisquare(*table.T)
    average = dict(zip(methods, ranks.mean(axis=0).tolist(), strict=True))
    return FriedmanResult(
        statistic=float(statistic),
        p_value=float(p_value),
        average_ranks=dict(sorted(average.items(), key=lambda item: item[1])),
        critical_difference=critical_difference(len(methods), len(datasets), alpha=alpha),
        n_datasets=len(datasets),
        alpha=alpha,
    )


def indistinguishable_runs(ranks: Sequence[float], critical: float) -> list[tuple[int, int]]:
    """Maximal runs `(first, last)` of sorted `ranks` closer than `critical`: the bars of a CD diagram.

    ```pycon
    >>> indistinguishable_runs([1.0, 1.5, 2.2, 3.9], 1.3)
    [(0, 2)]

    ```
    """
    spans: list[tuple[int, int]] = []
    for first in range(len(ranks)):
        last = max(j for j in range(first, len(ranks)) if ranks[j] - ranks[first] < critical)
        if last > first and not (spans and spans[-1][1] >= last):
            spans.append((first, last))
    return spans


def critical_difference_figure(result: FriedmanResult, *, title: str | None = None) -> Figure:
    """Demšar's critical-difference diagram: the methods on an average-rank axis (best on the left), a thick
    bar joining methods that do not differ significantly (Nemenyi), and the CD to scale above the axis."""
    from matplotlib.figure import Figure

    names = list(result.average_ranks)
    ranks = list(result.average_ranks.values())
    k = len(names)
    half = (k + 1) // 2  # the better half is labelled on the left, the rest on the right
    figure = Figure(figsize=(7, 1.4 + 0.3 * half))
    figure.subplots_adjust(left=0.25, right=0.75, top=0.8, bottom=0.05)  # the labels go into the margins
    axes = figure.subplots()
    axes.set_xlim(1, k)
    axes.set_ylim(-(half + 0.5), 1.6)
    axes.axis("off")
    axes.hlines(0, 1, k, color="black", linewidth=1)
    for tick in range(1, k + 1):
        axes.vlines(tick, 0, 0.15, color="black", linewidth=1)
        axes.text(tick, 0.25, str(tick), ha="center", va="bottom", fontsize=8)
    cd = result.critical_difference
    axes.hlines(1.1, 1, min(1 + cd, k), color="black", linewidth=1.5)
    axes.text(1, 1.2, f"CD = {cd:.2f}", ha="left", va="bottom", fontsize=8)
    for index, (name, rank) in enumerate(zip(names, ranks, strict=True)):
        left = index < half
        depth = -(index + 1) if left else -(k - index)
        edge = 1 if left else k
        axes.plot([rank, rank, edge], [0, depth, depth], color="black", linewidth=0.8, clip_on=False)
        label = f"{name} ({rank:.2f}) " if left else f" {name} ({rank:.2f})"
        axes.text(edge, depth, label, ha="right" if left else "left", va="center", fontsize=8, clip_on=False)
    for offset, (first, last) in enumerate(indistinguishable_runs(ranks, cd)):
        axes.hlines(-0.3 - 0.2 * offset, ranks[first] - 0.03, ranks[last] + 0.03, color="black", linewidth=3)
    axes.set_title(
        title or f"Average rank over {result.n_datasets} datasets (Friedman p = {result.p_value:.3g})", fontsize=9
    )
    return figure
