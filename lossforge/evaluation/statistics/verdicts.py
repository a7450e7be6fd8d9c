"""The verdict table ([verdict_table][lossforge.evaluation.statistics.verdicts.verdict_table]): one row per
group — its summary and, against the baseline, the difference, the Holm-adjusted p-value and the verdict
(better, worse, no detectable difference, or too few runs for one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lossforge.contract import did_you_mean
from lossforge.evaluation.statistics.difference import (
    ALPHA,
    PERMUTATIONS,
    Difference,
    Seed,
    compare_to_baseline,
    holm,
    seeds_needed,
    shared_seeds,
)
from lossforge.evaluation.statistics.metrics import Direction, metric_direction
from lossforge.evaluation.statistics.summary import CONFIDENCE, summarize

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"


def too_few_runs(seeds_needed: int) -> str:
    """The verdict for a comparison whose test could not reach significance even on the most extreme data.

    ```pycon
    >>> too_few_runs(8)
    'too few runs for a verdict (needs ≥ 8 seeds)'

    ```
    """
    return f"too few runs for a verdict (needs ≥ {seeds_needed} seeds)"


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
    [compare_to_baseline][lossforge.evaluation.statistics.difference.compare_to_baseline]; the p-values of the
    table are adjusted together with [holm][lossforge.evaluation.statistics.difference.holm]. The verdict of a row is

    * `better` / `worse` — Holm-adjusted `p <= alpha`, in the metric's better/worse direction;
    * `too few runs for a verdict (needs ≥ K seeds)` — even the most extreme data could not reach
      `alpha` with these n after the correction (the Holm-adjusted
      [min_p_value][lossforge.evaluation.statistics.difference.min_p_value]), so "no difference" would be a
      claim the runs cannot support; `K` is
      [seeds_needed][lossforge.evaluation.statistics.difference.seeds_needed] for the table;
    * `no detectable difference` — otherwise.

    Args:
        groups: group label → seed → value, e.g. `{"cross_entropy": {0: 0.91, 1: 0.93}, ...}`; the
            order of the groups is the order of the rows.
        metric: the metric the values are of; decides the direction
            ([metric_direction][lossforge.evaluation.statistics.metrics.metric_direction]).
        baseline: the label of the group the others are compared to; None for summaries only.
        direction: `"higher"` or `"lower"`, for a metric
            [metric_direction][lossforge.evaluation.statistics.metrics.metric_direction] does not know.
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
